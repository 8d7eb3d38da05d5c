import { ConnectionError, CorralError, errorClassFor } from './errors.js';
import type { Transport } from './http.js';

/** The WebSocket constructor the SDK uses: the global one (browsers, Node ≥ 22) or `ws` (see `@corral/sdk/node`). */
export type WebSocketLike = new (url: string) => WebSocket;

/** Options of `box.terminal()`. */
export interface TerminalOptions {
  /** Columns (default 80). */
  cols?: number;
  /** Rows (default 24). */
  rows?: number;
  /** Reattach to this session (its scrollback is replayed first) instead of starting a shell. */
  session?: string;
  /** Aborting closes the connection (the session lives on). */
  signal?: AbortSignal;
}

/** How a terminal's shell ended. */
export interface TerminalExit {
  exitCode: number | null;
  signal: string | null;
}

type ServerFrame =
  | { type: 'session'; id: string; cols: number; rows: number; observer: boolean; replayed_bytes: number }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'exit'; exit_code: number | null; signal: string | null }
  | { type: 'pong' }
  | { type: 'error'; error: { code: string; message: string } };

/**
 * An interactive shell (a PTY) in a sandbox over a WebSocket. Output arrives as bytes
 * (`onData`, or `for await (const chunk of terminal)`); `write` types, `resize` resizes.
 * The session outlives the connection: `close()` detaches, `box.terminal({session})` reattaches,
 * `kill()` ends the shell.
 */
export class Terminal implements AsyncIterable<Uint8Array> {
  /** The session id (reattach with it). */
  readonly sessionId: string;
  /** The terminal's size now. */
  cols: number;
  rows: number;
  /** Resolves when the shell exits, or with null when the connection closes first. */
  readonly exited: Promise<TerminalExit | null>;
  private readonly listeners = new Set<(chunk: Uint8Array) => void>();
  private backlog: Uint8Array[] | null = [];
  private ended = false;
  private endWaiters: (() => void)[] = [];
  private setExit!: (exit: TerminalExit | null) => void;
  private readonly encoder = new TextEncoder();

  private constructor(
    private readonly socket: WebSocket,
    first: Extract<ServerFrame, { type: 'session' }>,
    private readonly killSession: (id: string) => Promise<void>,
  ) {
    this.sessionId = first.id;
    this.cols = first.cols;
    this.rows = first.rows;
    this.exited = new Promise((resolve) => {
      this.setExit = resolve;
    });
  }

  /** Opens the WebSocket and answers once the server has attached it to a session. */
  static async open(
    transport: Transport,
    WebSocketImpl: WebSocketLike | undefined,
    sandboxId: string,
    options: TerminalOptions,
    killSession: (id: string) => Promise<void>,
  ): Promise<Terminal> {
    if (!WebSocketImpl) {
      throw new CorralError(
        'No WebSocket here: pass `WebSocket` to new Corral(), or import from @corral/sdk/node',
        {
          code: 'NO_WEBSOCKET',
          status: 0,
        },
      );
    }
    const token = (await transport.authorization(options.signal)).slice('Bearer '.length);
    const url = new URL(
      transport.url(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/terminal`, {
        cols: options.cols,
        rows: options.rows,
        session: options.session,
        token,
      }),
    );
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocketImpl(url.toString());
    socket.binaryType = 'arraybuffer';
    return new Promise<Terminal>((resolve, reject) => {
      let terminal: Terminal | null = null;
      const onAbort = () => {
        socket.close(1000, 'aborted');
        if (!terminal) reject(options.signal?.reason);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.addEventListener('message', (event: MessageEvent) => {
        if (typeof event.data !== 'string') {
          terminal?.push(new Uint8Array(event.data as ArrayBuffer));
          return;
        }
        const frame = JSON.parse(event.data) as ServerFrame;
        if (frame.type === 'session' && !terminal) {
          terminal = new Terminal(socket, frame, killSession);
          resolve(terminal);
        } else if (frame.type === 'resize' && terminal) {
          terminal.cols = frame.cols;
          terminal.rows = frame.rows;
        } else if (frame.type === 'exit') {
          terminal?.setExit({ exitCode: frame.exit_code, signal: frame.signal });
        } else if (frame.type === 'error') {
          const ErrorType = errorClassFor(frame.error.code);
          const err = new ErrorType(frame.error.message, { code: frame.error.code, status: 0 });
          if (!terminal) reject(err);
        }
      });
      socket.addEventListener('close', (event: { code: number; reason: string }) => {
        options.signal?.removeEventListener('abort', onAbort);
        if (!terminal) {
          reject(
            new ConnectionError(
              `The terminal WebSocket closed before it opened (${event.code} ${event.reason})`,
              {
                code: 'CONNECTION_ERROR',
                status: 0,
              },
            ),
          );
          return;
        }
        terminal.finish();
      });
      socket.addEventListener('error', () => {
        // A refused upgrade (401/403/404/409) shows as an error then a close: the close rejects.
      });
    });
  }

  private push(chunk: Uint8Array): void {
    if (this.backlog) this.backlog.push(chunk);
    for (const listener of this.listeners) listener(chunk);
  }

  private finish(): void {
    this.ended = true;
    this.setExit(null);
    for (const wake of this.endWaiters.splice(0)) wake();
  }

  /**
   * Calls `listener` with every chunk of output (first what arrived before anyone listened,
   * such as a reattached session's scrollback). Answers a function that unsubscribes.
   */
  onData(listener: (chunk: Uint8Array) => void): () => void {
    const held = this.backlog;
    this.backlog = null;
    for (const chunk of held ?? []) listener(chunk);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Output chunks until the connection closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const queue: Uint8Array[] = [];
    let wake: (() => void) | null = null;
    const stop = this.onData((chunk) => {
      queue.push(chunk);
      wake?.();
    });
    try {
      for (;;) {
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          continue;
        }
        if (this.ended) return;
        let resolveWait: () => void = () => {};
        await new Promise<void>((resolve) => {
          resolveWait = resolve;
          wake = resolve;
          this.endWaiters.push(resolve);
        });
        wake = null;
        this.endWaiters = this.endWaiters.filter((w) => w !== resolveWait);
      }
    } finally {
      stop();
    }
  }

  /** Types into the terminal (text is sent as UTF-8). */
  write(data: string | Uint8Array): void {
    this.socket.send(typeof data === 'string' ? this.encoder.encode(data) : data);
  }

  /** Resizes the terminal (every attached client is told). */
  resize(cols: number, rows: number): void {
    this.socket.send(JSON.stringify({ type: 'resize', cols, rows }));
    this.cols = cols;
    this.rows = rows;
  }

  /** Detaches: the connection closes, the shell keeps running (reattach with `sessionId`). */
  close(): void {
    this.socket.close(1000, 'detached');
  }

  /** Ends the shell and everything under it. */
  async kill(): Promise<void> {
    await this.killSession(this.sessionId);
  }
}
