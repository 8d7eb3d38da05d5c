import type { ExitStatus } from '@corral/runtime';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { SshConnection } from './connection.js';
import { serveSftp } from './sftp.js';

/** Typed input the terminal has not taken above which the channel stops being read (256 KiB). */
const INPUT_HIGH_WATER_BYTES = 256 * 1024;
/** The channel is read again once the terminal has taken all but this much (64 KiB). */
const INPUT_LOW_WATER_BYTES = 64 * 1024;
/** Terminal size when the client asked for a PTY without one. */
const DEFAULT_COLS = 80;
const DEFAULT_ROWS = 24;

/** What a started process offers to the session's later requests. */
interface Running {
  resize(cols: number, rows: number): void;
  kill(signal: NodeJS.Signals): void;
}

/** Clamps a terminal dimension from the client to 1..1000 (0 = the default). */
function dimension(value: number, fallback: number): number {
  if (!Number.isInteger(value) || value <= 0) return fallback;
  return Math.min(value, 1000);
}

/**
 * One `session` channel: `pty-req`, `window-change`, `shell` (a login shell as `user`), `exec`
 * (the command through `bash -lc`), `signal`, and the `sftp` subsystem. The sandbox's env is
 * applied; the client's `env` requests are refused (its locale may not exist in the sandbox).
 * Exit status (or the killing signal) goes back to the client; the process is killed when the
 * channel or the connection closes.
 */
export function handleSession(conn: SshConnection, session: Session): void {
  let pty: PseudoTtyInfo | null = null;
  let running: Running | null = null;

  session.on('pty', (accept, _reject, info) => {
    pty = info;
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
    running?.resize(dimension(info.cols, DEFAULT_COLS), dimension(info.rows, DEFAULT_ROWS));
    accept?.();
  });
  session.on('env', (_accept, reject) => reject?.());
  session.on('signal', (accept, _reject, info) => {
    const name = info.name.toUpperCase().replace(/^SIG/, '');
    if (/^[A-Z0-9]{1,10}$/.test(name)) running?.kill(`SIG${name}` as NodeJS.Signals);
    accept?.();
  });
  const start = (channel: ServerChannel, command: string | null) => {
    // Writes racing a close must not throw out of the SSH parser.
    channel.on('error', () => {});
    channel.stderr.on('error', () => {});
    channel.once('close', conn.notify(channel));
    run(conn, channel, command, pty).then(
      (started) => {
        running = started;
      },
      () => undefined,
    );
  };
  session.on('shell', (accept) => start(accept(), null));
  session.on('exec', (accept, _reject, info) => start(accept(), info.command));
  // Accepted at once: the client's first packet may follow the request immediately.
  session.on('sftp', (accept) => {
    const sftp = accept();
    try {
      serveSftp(conn, sftp);
    } catch (err) {
      conn.app.log.warn({ err, sandbox_id: conn.sandboxId }, 'ssh: could not serve sftp');
      sftp.end();
    }
  });
}

/** Ends the channel with `message` on stderr and exit status 1. */
function refuse(channel: ServerChannel, message: string): void {
  channel.stderr.write(`${message}\r\n`);
  channel.exit(1);
  channel.end();
}

/** Sends the exit status (or signal) and closes the channel. */
function finish(channel: ServerChannel, status: ExitStatus | null): void {
  if (status === null) channel.exit(1);
  else if (status.signal) channel.exit(status.signal.replace(/^SIG/, ''), false, '');
  else channel.exit(status.exitCode);
  channel.end();
}

/** Starts the shell or command on `channel`; null when it could not start (the client was told). */
async function run(
  conn: SshConnection,
  channel: ServerChannel,
  command: string | null,
  pty: PseudoTtyInfo | null,
): Promise<Running | null> {
  const id = conn.sandboxId;
  const runtime = conn.app.sandboxes.runtime;
  const args = command === null ? ['-l'] : ['-lc', command];
  try {
    const problem = await conn.unavailable();
    if (problem !== null) {
      refuse(channel, problem);
      return null;
    }
    const env = await conn.app.sandboxes.envFor(id);
    if (pty) {
      const proc = await runtime.pty(id, {
        command: '/bin/bash',
        args,
        env: { ...env, TERM: pty.term || 'xterm-256color' },
        cols: dimension(pty.cols, DEFAULT_COLS),
        rows: dimension(pty.rows, DEFAULT_ROWS),
        user: 'user',
      });
      let exited = false;
      // Gone for good (channel or connection closed): kill it and release the terminal.
      const release = () => {
        if (!exited) proc.kill('SIGKILL');
        proc.output.destroy();
      };
      const forget = conn.onClose(release);
      // The output ends after the exit once read out: its tail goes out before the exit status
      // (a client that stops reading holds it, as its channel window says; closing releases it).
      const drained = new Promise<void>((resolve) => {
        proc.output.once('end', resolve);
        proc.output.once('close', resolve);
      });
      proc.output.on('data', (chunk: Buffer) => {
        conn.touch();
        if (!channel.write(chunk)) {
          proc.output.pause();
          channel.once('drain', () => proc.output.resume());
        }
      });
      proc.output.on('error', () => {});
      // A program not reading its input holds the client back (SSH window) instead of the server
      // buffering what it sends.
      let pendingInput = 0;
      channel.on('data', (chunk: Buffer) => {
        conn.touch();
        pendingInput += chunk.length;
        if (pendingInput > INPUT_HIGH_WATER_BYTES) channel.pause();
        void proc.write(chunk).then(() => {
          pendingInput -= chunk.length;
          if (pendingInput <= INPUT_LOW_WATER_BYTES && channel.isPaused()) channel.resume();
        });
      });
      channel.on('close', release);
      proc.wait().then(
        async (status) => {
          exited = true;
          forget();
          await drained;
          finish(channel, status);
        },
        () => finish(channel, null),
      );
      return { resize: (cols, rows) => proc.resize(cols, rows), kill: (signal) => proc.kill(signal) };
    }
    const proc = await runtime.exec(id, { command: '/bin/bash', args, env, user: 'user' });
    let exited = false;
    const kill = () => {
      if (!exited) proc.kill('SIGKILL');
    };
    const forget = conn.onClose(kill);
    proc.stdout.on('data', () => conn.touch());
    proc.stdout.pipe(channel, { end: false });
    proc.stderr.pipe(channel.stderr, { end: false });
    proc.stdin.on('error', () => {});
    channel.on('data', () => conn.touch());
    channel.pipe(proc.stdin);
    channel.on('close', kill);
    proc.wait().then(
      (status) => {
        exited = true;
        forget();
        finish(channel, status);
      },
      () => finish(channel, null),
    );
    return { resize: () => {}, kill: (signal) => proc.kill(signal) };
  } catch (err) {
    conn.app.log.warn({ err, sandbox_id: id }, 'ssh: could not start the process');
    refuse(channel, `corral: could not start the process in sandbox ${id}`);
    return null;
  }
}
