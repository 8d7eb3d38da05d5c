import { ConnectionError, CorralError } from '../errors.js';
import type { Transport } from '../http.js';
import type { WebSocketLike } from '../terminal.js';
import { errorFromPayload, MuxChannel } from './channel.js';
import { type MuxExecOptions, MuxProcess } from './exec.js';
import {
  DEFAULT_WINDOW_BYTES,
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  FrameType,
  MAX_CHANNEL_ID,
  MAX_WINDOW_BYTES,
  MUX_PROTOCOL,
  toBytes,
} from './frames.js';
import { MuxPty, type MuxPtyOptions } from './pty.js';
import { explainRefusal } from './refusal.js';
import { MuxTcpStream } from './tcp.js';
import { invalid } from './validate.js';

/** Options of `box.connect()`. */
export interface ConnectOptions {
  /** The WebSocket constructor (default: the client's, else the global one). */
  WebSocket?: WebSocketLike;
  /** Aborting before the connection is open cancels it. */
  signal?: AbortSignal;
}

/** How the connection ended. */
export interface MuxCloseInfo {
  /** The WebSocket close code (1000 normal, 1001 server shutting down, 1006 lost …). */
  code: number;
  reason: string;
}

type SocketCtor = new (url: string, protocols: string[]) => WebSocket;

/**
 * One multiplexed WebSocket to a sandbox (`corral.mux.v1`): many commands, terminals and TCP
 * streams at once, each with its own flow control. Closing it kills everything it started.
 *
 * ```ts
 * const conn = await box.connect();
 * const proc = await conn.exec('sh', ['-c', 'tr a-z A-Z'], { stdin: 'hi\n' });
 * const { stdout, exitCode } = await proc.output();
 * conn.close();
 * ```
 */
export class SandboxConnection {
  /** Resolves when the WebSocket has closed (whoever closed it). */
  readonly closed: Promise<MuxCloseInfo>;
  readonly #channels = new Map<number, MuxChannel>();
  readonly #pings: (() => void)[] = [];
  #nextId = 1;
  #error: CorralError | null = null;
  #isClosed = false;

  private constructor(
    private readonly socket: WebSocket,
    /** The sandbox this connection reaches. */
    readonly sandboxId: string,
  ) {
    socket.addEventListener('message', (event: MessageEvent) => this.#receive(event.data));
    this.closed = new Promise((resolve) => {
      socket.addEventListener('close', (event: { code: number; reason: string }) => {
        this.#isClosed = true;
        const error =
          this.#error ??
          new ConnectionError(
            `The sandbox connection closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`,
            {
              code: 'CONNECTION_ERROR',
              status: 0,
              details: { close_code: event.code },
            },
          );
        for (const channel of [...this.#channels.values()]) channel.fail(error);
        for (const wake of this.#pings.splice(0)) wake();
        resolve({ code: event.code, reason: event.reason });
      });
    });
  }

  /** Opens the WebSocket (offering `corral.mux.v1`) and answers once it is open. */
  static async open(
    transport: Transport,
    WebSocketImpl: WebSocketLike | undefined,
    sandboxId: string,
    options: ConnectOptions = {},
  ): Promise<SandboxConnection> {
    const Impl = (options.WebSocket ?? WebSocketImpl) as SocketCtor | undefined;
    if (!Impl) {
      throw new CorralError(
        'No WebSocket here: pass `WebSocket` to new Corral(), or import from @corral/sdk/node',
        { code: 'NO_WEBSOCKET', status: 0 },
      );
    }
    const path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}`;
    const token = (await transport.authorization(options.signal)).slice('Bearer '.length);
    const url = new URL(transport.url(`${path}/ws`, { token }));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new Impl(url.toString(), [MUX_PROTOCOL]);
    socket.binaryType = 'arraybuffer';
    const refusal = await new Promise<string | null>((resolve) => {
      let detail = '';
      const onAbort = () => socket.close(1000, 'aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.addEventListener('open', () => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve(null);
      });
      socket.addEventListener('error', (event: Event) => {
        // `ws` says "Unexpected server response: 403"; browsers say nothing.
        const e = event as Event & { message?: string; error?: Error };
        detail = e.message ?? e.error?.message ?? '';
      });
      socket.addEventListener('close', (event: { code: number }) => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve(detail || `closed with ${event.code}`);
      });
    });
    if (options.signal?.aborted) throw options.signal.reason;
    if (refusal !== null) throw await explainRefusal(transport, path, refusal);
    if (socket.protocol !== MUX_PROTOCOL) {
      socket.close(1002, 'unsupported protocol');
      throw new CorralError(`The server answered subprotocol "${socket.protocol}", not ${MUX_PROTOCOL}`, {
        code: 'UNSUPPORTED_PROTOCOL',
        status: 0,
      });
    }
    return new SandboxConnection(socket, sandboxId);
  }

  /** Channels open or opening now (at most 64 per connection). */
  get channelCount(): number {
    return this.#channels.size;
  }

  /** True once the WebSocket has closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /**
   * Runs `command` (no shell: `'sh', ['-c', script]` for one) with pipes; answers once it
   * started. Read `stdout`/`stderr` (or `output()`), write stdin, `wait()` for its exit.
   */
  async exec(command: string, args: string[] = [], options: MuxExecOptions = {}): Promise<MuxProcess> {
    const body: Record<string, unknown> = { type: 'exec', command, args };
    copyCommon(body, options);
    const channel = await this.#open(body, options.window, `exec ${command}`);
    const proc = new MuxProcess(channel);
    if (options.stdin !== undefined) {
      void proc.write(toBytes(options.stdin)).then(
        () => proc.closeStdin(),
        () => {},
      );
    }
    return proc;
  }

  /** Starts a program on a terminal (a login shell by default); answers once it started. */
  async pty(options: MuxPtyOptions = {}): Promise<MuxPty> {
    const body: Record<string, unknown> = { type: 'pty' };
    if (options.command !== undefined) body.command = options.command;
    if (options.args) body.args = options.args;
    copyCommon(body, options);
    if (options.cols !== undefined) body.cols = options.cols;
    if (options.rows !== undefined) body.rows = options.rows;
    const channel = await this.#open(body, options.window, 'terminal');
    return new MuxPty(channel, options.cols ?? 80, options.rows ?? 24);
  }

  /**
   * A byte stream to `port` listening inside the sandbox (on its loopback). Nothing listening:
   * rejects with SandboxUnavailableError (`details.port`); the connection stays up.
   */
  async tcp(port: number, options: { window?: number } = {}): Promise<MuxTcpStream> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw invalid(`Not a port: ${port}`, 'port');
    const channel = await this.#open({ type: 'tcp', port }, options.window, `port ${port}`);
    return new MuxTcpStream(channel, port);
  }

  /** Round trip to the server (PING/PONG on the connection). */
  async ping(): Promise<void> {
    if (this.#isClosed)
      throw new ConnectionError('The sandbox connection is closed', { code: 'CONNECTION_ERROR', status: 0 });
    await new Promise<void>((resolve) => {
      this.#pings.push(resolve);
      this.#send(encodeFrame(FrameType.PING, 0));
    });
  }

  /** Closes the WebSocket: every process it started is killed, every stream closed. */
  close(): Promise<MuxCloseInfo> {
    if (!this.#isClosed) this.socket.close(1000, 'client closed');
    return this.closed;
  }

  async #open(body: Record<string, unknown>, window: number | undefined, what: string): Promise<MuxChannel> {
    if (this.#isClosed)
      throw new ConnectionError('The sandbox connection is closed', { code: 'CONNECTION_ERROR', status: 0 });
    const size = window ?? DEFAULT_WINDOW_BYTES;
    if (!Number.isInteger(size) || size < 1 || size > MAX_WINDOW_BYTES)
      throw invalid(`Bad window ${size}`, 'window');
    const id = this.#allocate();
    const channel = new MuxChannel(
      id,
      { send: (f) => this.#send(f), release: (n) => this.#channels.delete(n) },
      size,
      what,
    );
    this.#channels.set(id, channel);
    this.#send(encodeJsonFrame(FrameType.OPEN, id, { ...body, window: size }));
    await channel.opened;
    return channel;
  }

  #allocate(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_CHANNEL_ID ? 1 : id + 1;
      if (!this.#channels.has(id)) return id;
    }
  }

  #send(frame: Uint8Array): void {
    if (this.socket.readyState === 1) this.socket.send(frame);
  }

  #receive(data: unknown): void {
    // The server sends binary frames only (an ArrayBuffer here; a view from some WebSockets).
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return;
    const frame = decodeFrame(bytes);
    if (!frame) return;
    if (frame.channel === 0) {
      if (frame.type === FrameType.PONG) this.#pings.shift()?.();
      else if (frame.type === FrameType.ERROR)
        this.#error = errorFromPayload(frame.payload, 'The connection failed');
      return;
    }
    // Frames for a finished channel can cross our CLOSE: they are dropped.
    this.#channels.get(frame.channel)?.handle(frame);
  }
}

function copyCommon(body: Record<string, unknown>, options: MuxExecOptions): void {
  if (options.env) body.env = options.env;
  if (options.cwd) body.cwd = options.cwd;
  if (options.user) body.user = options.user;
  if (options.timeoutSeconds !== undefined) body.timeout_seconds = options.timeoutSeconds;
}
