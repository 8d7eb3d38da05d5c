import { CorralError, errorClassFor } from '../errors.js';
import {
  encodeFrame,
  type Frame,
  FrameType,
  MAX_STDIN_PAYLOAD,
  parseJson,
  readU32,
  Stream,
  u32,
} from './frames.js';
import { Inbox } from './inbox.js';

/** How a command or terminal ended. */
export interface MuxExit {
  /** The exit code; 128 + the signal number when it was killed. */
  exitCode: number;
  /** The signal that killed it, or null. */
  signal: string | null;
  /** True when `timeoutSeconds` ran out and the process tree was killed. */
  timedOut: boolean;
}

interface Settle {
  open(body: { window: number; pid?: number }): void;
  openFailed(err: unknown): void;
  exit(exit: MuxExit): void;
  noExit(err: unknown): void;
  closed(): void;
}

/** What a channel needs from its connection. */
export interface ChannelHost {
  send(frame: Uint8Array): void;
  /** The channel is finished: its id is free again. */
  release(id: number): void;
}

/** The typed error for an API error object (OPEN_ERROR, ERROR payloads). */
export function errorFromPayload(payload: Uint8Array, fallback: string): CorralError {
  const body = parseJson(payload) as {
    error?: { code?: unknown; message?: unknown; details?: unknown };
  } | null;
  const error = body?.error;
  const code = typeof error?.code === 'string' ? error.code : 'INTERNAL';
  const message = typeof error?.message === 'string' ? error.message : fallback;
  const details = error?.details && typeof error.details === 'object' ? error.details : {};
  const ErrorType = errorClassFor(code);
  return new ErrorType(message, { code, status: 0, details: details as Record<string, unknown> });
}

/** A channel that was closed (by you, or because it failed) before it finished. */
export function channelClosedError(what: string): CorralError {
  return new CorralError(`${what}: the channel was closed`, { code: 'CHANNEL_CLOSED', status: 0 });
}

/**
 * One channel of a multiplexed connection: its credit both ways, its output streams and its
 * end. The kinds (process, terminal, TCP stream) wrap it.
 */
export class MuxChannel {
  /** Output: STDOUT frames (a terminal's output, a TCP stream's received bytes). */
  readonly stdout: Inbox;
  /** STDERR frames (exec channels). */
  readonly stderr: Inbox;
  /** OPEN_OK's body (`pid` for processes), once open. */
  readonly opened: Promise<{ window: number; pid?: number }>;
  /** The EXIT (exec, pty); rejects when the channel ends without one. */
  readonly exit: Promise<MuxExit>;
  /** Resolves once the channel is finished (the server's CLOSE or OPEN_ERROR, or the connection went). */
  readonly closed: Promise<void>;
  /** The process id inside the sandbox (exec, pty), from OPEN_OK. */
  pid: number | null = null;
  /** The last ERROR the server sent on this channel. */
  lastError: CorralError | null = null;
  #state: 'opening' | 'open' | 'closed' = 'opening';
  #credit = 0;
  readonly #creditWaiters: (() => void)[] = [];
  #writes: Promise<void> = Promise.resolve();
  #inputEnded = false;
  #ungranted = 0;
  readonly #grantAt: number;
  readonly #settle: Settle;

  constructor(
    readonly id: number,
    private readonly host: ChannelHost,
    /** The receive window this client offered in its OPEN. */
    readonly window: number,
    private readonly what: string,
  ) {
    // Grant in batches (fewer frames) yet early enough that the server never runs dry.
    this.#grantAt = Math.max(1, Math.min(32 * 1024, Math.floor(window / 4)));
    const consumed = (bytes: number) => this.#consumed(bytes);
    this.stdout = new Inbox(consumed);
    this.stderr = new Inbox(consumed);
    const settle: Partial<Settle> = {};
    this.opened = new Promise((resolve, reject) => {
      settle.open = resolve;
      settle.openFailed = reject;
    });
    this.exit = new Promise((resolve, reject) => {
      settle.exit = resolve;
      settle.noExit = reject;
    });
    this.closed = new Promise((resolve) => {
      settle.closed = resolve;
    });
    this.#settle = settle as Settle;
    // Nobody may await these: a failure must not be an unhandled rejection.
    this.opened.catch(() => {});
    this.exit.catch(() => {});
  }

  /** True once the channel is finished. */
  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** A frame from the server for this channel. */
  handle(frame: Frame): void {
    if (this.#state === 'closed') return;
    switch (frame.type) {
      case FrameType.OPEN_OK: {
        const body = parseJson(frame.payload) ?? {};
        this.#credit = typeof body.window === 'number' ? body.window : 0;
        this.#state = 'open';
        if (typeof body.pid === 'number') this.pid = body.pid;
        this.#settle.open({
          window: this.#credit,
          ...(typeof body.pid === 'number' ? { pid: body.pid } : {}),
        });
        break;
      }
      case FrameType.OPEN_ERROR:
        this.#finish(errorFromPayload(frame.payload, `${this.what} could not be opened`), true);
        break;
      case FrameType.STDOUT:
        this.stdout.push(frame.payload);
        break;
      case FrameType.STDERR:
        this.stderr.push(frame.payload);
        break;
      case FrameType.EOF:
        if (frame.payload[0] === Stream.STDERR) this.stderr.end();
        else this.stdout.end();
        break;
      case FrameType.WINDOW: {
        this.#credit += readU32(frame.payload) ?? 0;
        for (const wake of this.#creditWaiters.splice(0)) wake();
        break;
      }
      case FrameType.EXIT: {
        const body = parseJson(frame.payload) ?? {};
        this.#settle.exit({
          exitCode: typeof body.exit_code === 'number' ? body.exit_code : -1,
          signal: typeof body.signal === 'string' ? body.signal : null,
          timedOut: body.timed_out === true,
        });
        break;
      }
      case FrameType.ERROR:
        this.lastError = errorFromPayload(frame.payload, `${this.what} failed`);
        break;
      case FrameType.CLOSE:
        this.#finish(this.lastError ?? channelClosedError(this.what), false);
        break;
      default:
        break;
    }
  }

  /** The connection is gone: everything pending fails with `error`. */
  fail(error: unknown): void {
    this.#finish(error, true);
  }

  /**
   * Sends bytes as STDIN, in frames within the server's credit (waiting for WINDOW grants),
   * after any earlier write. Resolves once all of it is on the wire.
   */
  write(data: Uint8Array): Promise<void> {
    const run = this.#writes.then(() => this.#send(data));
    this.#writes = run.catch(() => {});
    return run;
  }

  /** After earlier writes: EOF (no more STDIN). */
  endInput(): Promise<void> {
    const run = this.#writes.then(() => {
      if (this.#inputEnded || this.#state !== 'open') return;
      this.#inputEnded = true;
      this.host.send(encodeFrame(FrameType.EOF, this.id));
    });
    this.#writes = run.catch(() => {});
    return run;
  }

  /** Sends a control frame (RESIZE, SIGNAL) if the channel is open. */
  control(type: number, payload: Uint8Array): void {
    if (this.#state !== 'open') throw channelClosedError(this.what);
    this.host.send(encodeFrame(type, this.id, payload));
  }

  /** Stops the channel now (CLOSE): the server kills what it runs and answers CLOSE. */
  close(): Promise<void> {
    if (this.#state !== 'closed') this.host.send(encodeFrame(FrameType.CLOSE, this.id));
    return this.closed;
  }

  async #send(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (this.#state !== 'open') throw channelClosedError(this.what);
      if (this.#inputEnded)
        throw new CorralError('Input was already closed', { code: 'INPUT_CLOSED', status: 0 });
      if (this.#credit <= 0) {
        await new Promise<void>((resolve) => this.#creditWaiters.push(resolve));
        continue;
      }
      const n = Math.min(this.#credit, MAX_STDIN_PAYLOAD, data.length - offset);
      this.host.send(encodeFrame(FrameType.STDIN, this.id, data.subarray(offset, offset + n)));
      this.#credit -= n;
      offset += n;
    }
  }

  #consumed(bytes: number): void {
    this.#ungranted += bytes;
    if (this.#ungranted < this.#grantAt || this.#state !== 'open') return;
    this.host.send(encodeFrame(FrameType.WINDOW, this.id, u32(this.#ungranted)));
    this.#ungranted = 0;
  }

  #finish(error: unknown, failOutput: boolean): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#settle.openFailed(error);
    this.#settle.noExit(error);
    // After the server's CLOSE, output that had its EOF reads to the end; the rest fails.
    this.stdout.end(failOutput || !this.stdout.ended ? error : null);
    this.stderr.end(failOutput || !this.stderr.ended ? error : null);
    for (const wake of this.#creditWaiters.splice(0)) wake();
    this.host.release(this.id);
    this.#settle.closed();
  }
}
