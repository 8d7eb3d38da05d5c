// What the interactive scenario runs inside its sandboxes (the same on both sides), and the
// keystroke-echo loop it times over any byte channel (the terminal WebSocket, or runtime.pty).
import { performance } from 'node:perf_hooks';

/** The port the HTTP server inside each sandbox listens on. */
export const APP_PORT = 3000;

/** Where that server's script is written inside the sandbox. */
export const APP_PATH = '/home/user/bench-app.cjs';

/**
 * A small node:http server: `GET /` answers 2 bytes; `GET /big?mib=N` streams N MiB from one
 * preallocated 1 MiB buffer (honouring back-pressure), so the figures measure the path, not
 * the app.
 */
export const APP_SOURCE = `
const http = require('node:http');
const chunk = Buffer.alloc(1 << 20, 120);
http.createServer((req, res) => {
  if (req.url.startsWith('/big')) {
    const mib = Number(new URL(req.url, 'http://x').searchParams.get('mib') || 64);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mib * chunk.length });
    let sent = 0;
    const pump = () => {
      while (sent < mib) {
        sent++;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
  res.end('ok');
}).listen(${APP_PORT}, '0.0.0.0');
`;

/** The shell line that starts the server detached from the exec that launches it. */
export const APP_START = `setsid nohup node ${APP_PATH} >/tmp/bench-app.log 2>&1 </dev/null & for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/${APP_PORT}) 2>/dev/null && exit 0; sleep 0.05; done; cat /tmp/bench-app.log; exit 1`;

/** Typed into a fresh shell: raw mode, no tty echo, a marker, then `cat` echoes every byte back. */
export const RAW_CAT_LINE = 'stty raw -echo; echo RE""ADY; exec cat\n';

/**
 * Types RAW_CAT_LINE into `channel` (`send(buffer)` writes, `onData(listener)` delivers every
 * output chunk) and waits for the marker. Resolves with `samples(n, warmup)`: `n` one-byte round
 * trips timed after `warmup` untimed ones, from `send` until that byte comes back (ms); it may
 * be called again (blocks taking turns with another channel).
 */
export async function rawCat(channel, deadlineMs = 30_000) {
  let text = '';
  let waiter = null;
  channel.onData((chunk) => {
    text += chunk.toString('latin1');
    if (waiter) waiter();
  });
  const waitFor = (check) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`no echo within ${deadlineMs} ms; output tail ${JSON.stringify(text.slice(-200))}`));
      }, deadlineMs);
      const poke = () => {
        if (!check()) return;
        clearTimeout(timer);
        waiter = null;
        resolve();
      };
      waiter = poke;
      poke();
    });
  channel.send(Buffer.from(RAW_CAT_LINE));
  await waitFor(() => /READY\r?\n/.test(text));
  // Let the prompt and the marker's line settle before the first keystroke.
  await new Promise((r) => setTimeout(r, 200));
  text = '';
  let next = 0;
  return {
    async samples(n, warmup = 0) {
      const samples = [];
      for (let i = -warmup; i < n; i++) {
        const byte = String.fromCharCode(97 + (next++ % 26));
        const start = performance.now();
        channel.send(Buffer.from(byte, 'latin1'));
        await waitFor(() => text.endsWith(byte));
        const ms = performance.now() - start;
        text = '';
        if (i >= 0) samples.push(ms);
      }
      return samples;
    },
  };
}
