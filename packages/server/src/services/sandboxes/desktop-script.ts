import { VNC_PORT } from './view.js';

/** The X display the desktop runs on inside a `gui` sandbox. */
export const DESKTOP_DISPLAY = ':1';
/** The virtual screen: width x height x depth. */
export const DESKTOP_SCREEN = '1280x800x24';
/** The desktop's background colour (set with xsetroot where the template has it). */
export const DESKTOP_BACKGROUND = '#2d5b8c';
/** The VNC server's port inside the sandbox (loopback only; websockify bridges it to `VNC_PORT`). */
export const RFB_PORT = 5900;
/** Where the desktop programs' logs go inside the sandbox. */
export const DESKTOP_LOG_DIR = '/tmp/.corral-desktop';
/** Exit code of the launcher when the template lacks a program the desktop needs. */
export const MISSING_PROGRAM_EXIT = 3;

const displayNumber = DESKTOP_DISPLAY.slice(1);
/** The terminal window a fresh desktop opens. */
const XTERM = 'xterm -geometry 80x24+60+60 -fa Monospace -fs 11 -bg black -fg white -ls';

/**
 * Run as root first: the X socket directory owned by root with the sticky bit (as X expects),
 * and the display's lock and socket removed when no X server runs — /tmp is kept across a
 * stop, so a lock from before would name a pid that may now be another process's.
 */
export const PREPARE_SCRIPT = [
  'set -e',
  'mkdir -p /tmp/.X11-unix',
  'chown root:root /tmp/.X11-unix',
  'chmod 1777 /tmp/.X11-unix',
  `if ! pgrep -x Xvfb >/dev/null 2>&1; then rm -f /tmp/.X${displayNumber}-lock /tmp/.X11-unix/X${displayNumber}; fi`,
].join('\n');

/**
 * Run as the sandbox user: starts each missing piece — Xvfb, openbox, the background and an
 * xterm (on a fresh display only), x11vnc on loopback, websockify serving noVNC — each in its
 * own session (`setsid -f`) with its output in `DESKTOP_LOG_DIR`, so the launcher exits at
 * once and leaves nothing attached to the exec (the desktop is not an API command that keeps
 * the sandbox awake). Pieces already running are left alone, so running it twice is harmless.
 */
export const LAUNCH_SCRIPT = [
  'set -u',
  `logs=${DESKTOP_LOG_DIR}`,
  'mkdir -p "$logs"',
  'for bin in Xvfb x11vnc websockify; do',
  `  command -v "$bin" >/dev/null 2>&1 || { echo "the template has no $bin" >&2; exit ${MISSING_PROGRAM_EXIT}; }`,
  'done',
  `[ -f /usr/share/novnc/vnc.html ] || { echo "the template has no noVNC (/usr/share/novnc)" >&2; exit ${MISSING_PROGRAM_EXIT}; }`,
  `export DISPLAY=${DESKTOP_DISPLAY}`,
  'running() { pgrep -u "$(id -u)" -x "$1" >/dev/null 2>&1; }',
  'detach() { log=$1; shift; setsid -f "$@" >"$logs/$log.log" 2>&1 </dev/null; }',
  'fresh=0',
  'if ! running Xvfb; then',
  `  detach xvfb Xvfb ${DESKTOP_DISPLAY} -screen 0 ${DESKTOP_SCREEN} -nolisten tcp -noreset`,
  '  fresh=1',
  'fi',
  'i=0',
  `while [ ! -S /tmp/.X11-unix/X${displayNumber} ]; do`,
  '  i=$((i + 1))',
  '  if [ "$i" -gt 300 ]; then echo "Xvfb did not start:" >&2; tail -n 5 "$logs/xvfb.log" >&2; exit 4; fi',
  '  sleep 0.05',
  'done',
  // The socket exists a moment before the server answers: wait until a client gets through.
  'if command -v xset >/dev/null 2>&1; then',
  '  until xset q >/dev/null 2>&1; do',
  '    i=$((i + 1))',
  '    if [ "$i" -gt 300 ]; then echo "Xvfb does not answer:" >&2; tail -n 5 "$logs/xvfb.log" >&2; exit 4; fi',
  '    sleep 0.05',
  '  done',
  'fi',
  'if command -v openbox >/dev/null 2>&1 && ! running openbox; then detach openbox openbox; fi',
  // A fresh display gets the background and a terminal; a running one keeps what it shows.
  'if [ "$fresh" = 1 ]; then',
  `  if command -v xsetroot >/dev/null 2>&1; then xsetroot -solid '${DESKTOP_BACKGROUND}' || true; fi`,
  // An xterm whose pty cannot be opened (as under gVisor) retries for ever, eating the CPU:
  // a first one that must exit on its own within seconds decides whether the real one starts.
  '  if command -v xterm >/dev/null 2>&1; then',
  `    detach xterm sh -c 'timeout -s KILL 5 xterm -e true && exec ${XTERM}'`,
  '  fi',
  'fi',
  'if ! running x11vnc; then',
  `  detach x11vnc x11vnc -display ${DESKTOP_DISPLAY} -localhost -forever -shared -nopw -rfbport ${RFB_PORT} -noipv6 -noxrecord -noscr -nowf -quiet`,
  'fi',
  'if ! running websockify; then',
  `  detach websockify websockify --web /usr/share/novnc ${VNC_PORT} 127.0.0.1:${RFB_PORT}`,
  'fi',
].join('\n');
