import type { ExitStatus, PtyProcess } from '@corral/runtime';
import type { WebSocket } from 'ws';
import { type ClientControl, parseClientControl, type ServerControl } from './protocol.js';
import { Scrollback } from './scrollback.js';

/** Output queued to one client above which the PTY's output is paused (1 MiB). */
export const CLIENT_HIGH_WATER_BYTES = 1024 * 1024;
/** Output is resumed once every client has at most this much queued (64 KiB). */
export const CLIENT_LOW_WATER_BYTES = 64 * 1024;
/** A client still above the high-water mark this long after a pause is dropped (10 s). */
export const CLIENT_STALL_MS = 10_000;

/** One WebSocket attached to a session. */
interface Client {
  socket: WebSocket;
  /** Observers get the output; their input and resize frames are ignored. */
  observer: boolean;
  /** Answered the last heartbeat ping. */
  alive: boolean;
}

/** What a session is built from. */
export interface TerminalSessionInit {
  id: string;
  sandboxId: string;
  pty: PtyProcess;
  cols: number;
  rows: number;
  scrollbackBytes: number;
  /** Input or output happened (for the sandbox's idle timeout). */
  onActivity: () => void;
  /** The shell has exited (or was killed); called once, after the exit frame went out. */
  onEnd: (session: TerminalSession, status: ExitStatus | null) => void;
}

/**
 * One PTY (a login shell) and the WebSockets attached to it. Output goes to every client and
 * into a bounded scrollback; any non-observer client may type and resize. Output is paused
 * while a client lags by more than CLIENT_HIGH_WATER_BYTES — the runtime then stops reading
 * the terminal, so the shell blocks on its writes — and a client that stays behind for
 * CLIENT_STALL_MS is dropped, so memory never grows with a slow reader and one stuck client
 * cannot freeze the shell for the others for long. With no client attached the output keeps
 * flowing into the scrollback: a detached session's programs run on, never blocked.
 */
export class TerminalSession {
  readonly id: string;
  readonly sandboxId: string;
  readonly pid: number;
  readonly createdAt = new Date().toISOString();
  #cols: number;
  #rows: number;
  readonly #pty: PtyProcess;
  readonly #init: TerminalSessionInit;
  readonly #scrollback: Scrollback;
  readonly #clients = new Set<Client>();
  #detachedAtMs: number | null = Date.now();
  #stallTimer: NodeJS.Timeout | null = null;
  #ended = false;

  constructor(init: TerminalSessionInit) {
    this.id = init.id;
    this.sandboxId = init.sandboxId;
    this.pid = init.pty.pid;
    this.#pty = init.pty;
    this.#init = init;
    this.#cols = init.cols;
    this.#rows = init.rows;
    this.#scrollback = new Scrollback(init.scrollbackBytes);
    init.pty.output.on('data', (chunk: Buffer) => this.#onOutput(chunk));
    init.pty.output.on('error', () => {});
    // The exit frame goes out after the shell's last output: the runtime reports the exit as
    // soon as it happens, while output a paused session has not read yet still waits in the PTY.
    const outputEnded = new Promise<void>((resolve) =>
      init.pty.output.once('end', resolve).once('close', resolve),
    );
    Promise.all([init.pty.wait(), outputEnded]).then(
      ([status]) => this.#end(status),
      () => this.#end(null),
    );
  }

  get cols(): number {
    return this.#cols;
  }
  get rows(): number {
    return this.#rows;
  }
  /** Clients attached now (observers included). */
  get clientCount(): number {
    return this.#clients.size;
  }
  /** When the last client left (ms epoch), or null while one is attached. */
  get detachedAtMs(): number | null {
    return this.#detachedAtMs;
  }

  /**
   * Attaches `socket`: a `session` frame, the scrollback (one binary frame) and then the live
   * output, with nothing lost or repeated in between (all in one tick).
   */
  attach(socket: WebSocket, observer: boolean): void {
    if (this.#ended) {
      socket.close(1011, 'session ended');
      return;
    }
    const client: Client = { socket, observer, alive: true };
    const replay = this.#scrollback.snapshot();
    this.#send(client, {
      type: 'session',
      id: this.id,
      cols: this.#cols,
      rows: this.#rows,
      observer,
      replayed_bytes: replay.length,
    });
    if (replay.length > 0) socket.send(replay, { binary: true });
    this.#clients.add(client);
    this.#detachedAtMs = null;
    socket.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(client, data, isBinary));
    socket.on('pong', () => {
      client.alive = true;
    });
    socket.on('close', () => this.#detach(client));
  }

  /** Resizes the terminal and tells every client. */
  resize(cols: number, rows: number): void {
    if (this.#ended) return;
    this.#cols = cols;
    this.#rows = rows;
    this.#pty.resize(cols, rows);
    this.#broadcast({ type: 'resize', cols, rows });
  }

  /** Ends the shell (and everything under it); clients get the exit frame. */
  kill(): void {
    if (!this.#ended) this.#pty.kill('SIGKILL');
  }

  /** Pings every client; one that did not answer the previous ping is cut off. */
  heartbeat(): void {
    for (const client of this.#clients) {
      if (!client.alive) {
        client.socket.terminate();
        continue;
      }
      client.alive = false;
      client.socket.ping();
    }
  }

  #onMessage(client: Client, data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      if (client.observer) return;
      this.#write(data);
      return;
    }
    const control: ClientControl | string = parseClientControl(data.toString('utf8'));
    if (typeof control === 'string') {
      this.#send(client, { type: 'error', error: { code: 'VALIDATION_ERROR', message: control } });
      return;
    }
    if (control.type === 'ping') {
      this.#send(client, { type: 'pong' });
      return;
    }
    // An observer's input and resize frames are dropped: it watches, it never acts.
    if (client.observer) {
      this.#send(client, {
        type: 'error',
        error: {
          code: 'FORBIDDEN',
          message: 'This connection observes the terminal; it cannot type or resize',
        },
      });
      return;
    }
    if (control.type === 'resize') this.resize(control.cols, control.rows);
    else this.#write(Buffer.from(control.data, 'utf8'));
  }

  #write(data: Buffer): void {
    if (this.#ended || data.length === 0) return;
    void this.#pty.write(data);
    this.#init.onActivity();
  }

  #onOutput(chunk: Buffer): void {
    this.#scrollback.append(chunk);
    this.#init.onActivity();
    let lagging = false;
    for (const client of this.#clients) {
      client.socket.send(chunk, { binary: true }, () => this.#maybeResume());
      if (client.socket.bufferedAmount > CLIENT_HIGH_WATER_BYTES) lagging = true;
    }
    if (lagging && !this.#pty.output.isPaused()) {
      this.#pty.output.pause();
      this.#stallTimer = setTimeout(() => this.#dropLaggards(), CLIENT_STALL_MS);
      this.#stallTimer.unref();
    }
  }

  #maybeResume(): void {
    if (!this.#pty.output.isPaused()) return;
    for (const client of this.#clients) {
      if (client.socket.bufferedAmount > CLIENT_LOW_WATER_BYTES) return;
    }
    this.#resume();
  }

  #resume(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    this.#pty.output.resume();
  }

  #dropLaggards(): void {
    this.#stallTimer = null;
    for (const client of this.#clients) {
      if (client.socket.bufferedAmount > CLIENT_LOW_WATER_BYTES) {
        // 1013 "try again later": the client can reattach and get the scrollback.
        client.socket.close(1013, 'too slow to read the terminal output');
        client.socket.terminate();
        this.#clients.delete(client);
      }
    }
    if (this.#clients.size === 0) this.#detachedAtMs = Date.now();
    this.#resume();
  }

  #detach(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) this.#detachedAtMs = Date.now();
    this.#maybeResume();
  }

  #end(status: ExitStatus | null): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#broadcast({ type: 'exit', exit_code: status?.exitCode ?? null, signal: status?.signal ?? null });
    for (const client of this.#clients) client.socket.close(1000, 'the shell exited');
    this.#clients.clear();
    this.#pty.output.destroy();
    this.#init.onEnd(this, status);
  }

  #broadcast(frame: ServerControl): void {
    for (const client of this.#clients) this.#send(client, frame);
  }

  #send(client: Client, frame: ServerControl): void {
    client.socket.send(JSON.stringify(frame));
  }
}
