import WebSocket from 'ws';

/*
 * A small client of docs/ws-protocol.md written from the document, independent of the
 * server's codec: frames are `u8 type | u32 channel (BE) | payload`.
 */

export const T = {
  OPEN: 0x01,
  OPEN_OK: 0x02,
  OPEN_ERROR: 0x03,
  STDIN: 0x10,
  STDOUT: 0x11,
  STDERR: 0x12,
  EOF: 0x20,
  WINDOW: 0x21,
  RESIZE: 0x22,
  SIGNAL: 0x23,
  EXIT: 0x24,
  CLOSE: 0x30,
  ERROR: 0x40,
  PING: 0x50,
  PONG: 0x51,
} as const;

const WAIT_MS = 20_000;

export function frame(
  type: number,
  channel: number,
  payload: Buffer | string | object = Buffer.alloc(0),
): Buffer {
  const body = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(channel, 1);
  return Buffer.concat([head, body]);
}

export interface RawFrame {
  type: number;
  channel: number;
  payload: Buffer;
}

/** What arrived on one channel. */
export class ChannelLog {
  readonly #out: Buffer[] = [];
  readonly #err: Buffer[] = [];
  /** Bytes of STDOUT received. */
  stdoutBytes = 0;
  /** False: data frames are counted, not kept (for floods). */
  keep = true;
  readonly frames: RawFrame[] = [];
  add(f: RawFrame): void {
    if (f.type === T.STDOUT) {
      this.stdoutBytes += f.payload.length;
      if (this.keep) this.#out.push(f.payload);
      else if (f.payload.some((b) => b !== 0)) this.nonZero = true;
      return;
    }
    if (f.type === T.STDERR) this.#err.push(f.payload);
    else this.frames.push(f);
  }
  /** A kept-out data frame held a byte other than 0. */
  nonZero = false;
  get stdout(): Buffer {
    if (this.#out.length > 1) this.#out.splice(0, this.#out.length, Buffer.concat(this.#out));
    return this.#out[0] ?? Buffer.alloc(0);
  }
  get stderr(): Buffer {
    return Buffer.concat(this.#err);
  }
  get text(): string {
    return this.stdout.toString('utf8');
  }
  json(type: number): Record<string, unknown> | undefined {
    const f = this.frames.find((x) => x.type === type);
    return f ? (JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>) : undefined;
  }
  has(type: number): boolean {
    return this.frames.some((x) => x.type === type);
  }
}

/** A multiplexed-WebSocket client that records every frame per channel. */
export class MuxClient {
  readonly channels = new Map<number, ChannelLog>();
  /** Every frame but data frames, in order of arrival. */
  readonly all: RawFrame[] = [];
  /** The channel of every data frame, in order of arrival. */
  readonly order: number[] = [];
  /** Grant output credit back as it is read (false: the window is never reopened). */
  autoWindow = true;
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;
  #next = 1;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const f: RawFrame = { type: data[0]!, channel: data.readUInt32BE(1), payload: data.subarray(5) };
      if (f.type === T.STDOUT || f.type === T.STDERR) this.order.push(f.channel);
      else this.all.push(f);
      this.log(f.channel).add(f);
      if ((f.type === T.STDOUT || f.type === T.STDERR) && this.autoWindow) {
        const credit = Buffer.alloc(4);
        credit.writeUInt32BE(f.payload.length, 0);
        this.send(frame(T.WINDOW, f.channel, credit));
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString('utf8');
        resolve(code);
      });
    });
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<MuxClient> {
    const socket = new WebSocket(url, ['corral.mux.v1'], { headers });
    const client = new MuxClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  log(channel: number): ChannelLog {
    let log = this.channels.get(channel);
    if (!log) {
      log = new ChannelLog();
      this.channels.set(channel, log);
    }
    return log;
  }

  send(data: Buffer): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data, { binary: true });
  }

  /** Sends OPEN on a new channel and waits for OPEN_OK or OPEN_ERROR; returns the channel. */
  async open(request: object): Promise<{ id: number; ok: boolean; body: Record<string, unknown> }> {
    const id = this.#next++;
    this.send(frame(T.OPEN, id, request));
    const f = await this.waitFor(id, (log) => log.has(T.OPEN_OK) || log.has(T.OPEN_ERROR));
    const ok = f.has(T.OPEN_OK);
    return { id, ok, body: f.json(ok ? T.OPEN_OK : T.OPEN_ERROR)! };
  }

  /**
   * Sends `data` as STDIN on channel `id` without ever exceeding the server's window (from
   * OPEN_OK, replenished by WINDOW frames), in chunks of at most `chunk` bytes.
   */
  async writeAll(id: number, data: Buffer, chunk = 16 * 1024): Promise<void> {
    const log = this.log(id);
    const credit = () =>
      (log.json(T.OPEN_OK)!.window as number) +
      log.frames.filter((f) => f.type === T.WINDOW).reduce((sum, f) => sum + f.payload.readUInt32BE(0), 0);
    let sent = 0;
    while (sent < data.length) {
      if (credit() - sent <= 0) {
        const before = credit();
        await this.waitFor(id, () => credit() > before);
        continue;
      }
      const n = Math.min(chunk, credit() - sent, data.length - sent);
      this.stdin(id, data.subarray(sent, sent + n));
      sent += n;
    }
  }

  stdin(id: number, data: string | Buffer): void {
    this.send(frame(T.STDIN, id, Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8')));
  }

  async waitFor(id: number, done: (log: ChannelLog) => boolean, timeoutMs = WAIT_MS): Promise<ChannelLog> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = this.log(id);
      if (done(log)) return log;
      if (Date.now() > deadline || this.closeCode !== null) {
        throw new Error(
          `channel ${id}: condition not met; ${log.stdoutBytes} stdout bytes ending ${JSON.stringify(log.keep ? log.text.slice(-200) : '')}, frames ${log.frames.map((f) => f.type).join(',')}, close ${this.closeCode}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for the channel's CLOSE; returns its log. */
  closedChannel(id: number, timeoutMs = WAIT_MS): Promise<ChannelLog> {
    return this.waitFor(id, (log) => log.has(T.CLOSE), timeoutMs);
  }

  close(): Promise<number> {
    if (this.closeCode === null) this.socket.close();
    return this.closed;
  }
}
