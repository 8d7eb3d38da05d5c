import type { Readable } from 'node:stream';
import {
  encodeFrame,
  encodeJsonFrame,
  FrameType,
  MAX_DATA_PAYLOAD,
  MAX_WINDOW_BYTES,
  SERVER_WINDOW_BYTES,
  u32,
} from './frames.js';

/** What a channel needs from its connection. */
export interface ChannelHost {
  /** Sends one frame on the WebSocket. */
  send(frame: Buffer): void;
  /** True while the WebSocket's send buffer is above its high-water mark (data must wait). */
  readonly congested: boolean;
  /** Traffic happened (for the sandbox's idle timeout). */
  activity(): void;
  /** The channel has sent its CLOSE (or was aborted): its id is free again. */
  released(channel: Channel): void;
  /** The client broke the protocol: the connection is closed with `code`. */
  violation(code: number, reason: string): void;
}

/** A channel's counters, for introspection and tests. */
export interface ChannelStats {
  id: number;
  kind: Channel['kind'];
  /** Output bytes the server may still send (the client's window). */
  credit: number;
  /** Output read from the process/socket and waiting for credit or for the WebSocket. */
  heldBytes: number;
  /** Output bytes sent so far. */
  sentBytes: number;
  /** Output the sources have read but the channel has not taken yet (their stream buffers). */
  sourceBytes: number;
  /** The process/socket is not being read. */
  paused: boolean;
}

type Pending =
  | { kind: 'data'; type: typeof FrameType.STDOUT | typeof FrameType.STDERR; data: Buffer }
  | { kind: 'frame'; frame: Buffer; last: boolean };

/**
 * One channel of a connection. Output from its sources is sent as data frames only within
 * the credit the client granted (OPEN `window`, then WINDOW frames) and while the WebSocket is
 * not congested; otherwise it is held and the sources are paused, so at most about one chunk
 * per source is ever held. Input is accepted only within the window the server granted; the
 * server grants it again (WINDOW) once the bytes were handed to the process or socket.
 */
export abstract class Channel {
  abstract readonly kind: 'exec' | 'pty' | 'tcp';
  #credit: number;
  #inWindow = SERVER_WINDOW_BYTES;
  readonly #queue: Pending[] = [];
  readonly #sources: Readable[] = [];
  #heldBytes = 0;
  #sentBytes = 0;
  #paused = false;
  #done = false;

  constructor(
    readonly host: ChannelHost,
    readonly id: number,
    clientWindow: number,
  ) {
    this.#credit = clientWindow;
  }

  /** The channel has ended (CLOSE sent, or aborted). */
  get done(): boolean {
    return this.#done;
  }

  stats(): ChannelStats {
    return {
      id: this.id,
      kind: this.kind,
      credit: this.#credit,
      heldBytes: this.#heldBytes,
      sentBytes: this.#sentBytes,
      sourceBytes: this.#sources.reduce((sum, s) => sum + s.readableLength, 0),
      paused: this.#paused,
    };
  }

  /** Client input (STDIN) of `data.length` bytes, within the window the server granted. */
  input(data: Buffer): void {
    if (data.length > this.#inWindow) {
      this.host.violation(1008, `channel ${this.id} sent beyond its window`);
      return;
    }
    this.#inWindow -= data.length;
    this.host.activity();
    this.write(data, () => {
      if (this.#done) return;
      this.#inWindow += data.length;
      if (data.length > 0) this.host.send(encodeFrame(FrameType.WINDOW, this.id, u32(data.length)));
    });
  }

  /** The client granted `bytes` more output (WINDOW). */
  grant(bytes: number): void {
    this.#credit += bytes;
    if (this.#credit > MAX_WINDOW_BYTES) {
      this.host.violation(1008, `channel ${this.id} window above ${MAX_WINDOW_BYTES} bytes`);
      return;
    }
    this.flush();
  }

  /** Starts reading the process/socket (after OPEN_OK went out). */
  abstract begin(): void;

  /** The client closed its input (EOF). */
  abstract endInput(): void;
  /** RESIZE; false when this kind of channel has no terminal. */
  resize(_cols: number, _rows: number): boolean {
    return false;
  }
  /** SIGNAL; false when this kind of channel has no process. */
  signal(_signal: NodeJS.Signals): boolean {
    return false;
  }

  /** The client's CLOSE: stops everything, answers CLOSE at once (held output is dropped). */
  close(): void {
    if (this.#done) return;
    this.#teardown();
    this.host.send(encodeFrame(FrameType.CLOSE, this.id));
    this.host.released(this);
  }

  /** Ends the channel at once on the server's side: stops everything, sends `error` then CLOSE. */
  protected fail(error: object): void {
    if (this.#done) return;
    this.#teardown();
    this.host.send(encodeJsonFrame(FrameType.ERROR, this.id, error));
    this.host.send(encodeFrame(FrameType.CLOSE, this.id));
    this.host.released(this);
  }

  /** The connection is gone: stops everything, sends nothing. */
  abort(): void {
    if (this.#done) return;
    this.#teardown();
    this.host.released(this);
  }

  /** Sends what the credit and the WebSocket allow; pauses or resumes the sources to match. */
  flush(): void {
    while (this.#queue.length > 0 && !this.#done) {
      if (this.host.congested) break;
      const head = this.#queue[0]!;
      if (head.kind === 'frame') {
        this.#queue.shift();
        this.host.send(head.frame);
        if (head.last) {
          this.#done = true;
          this.host.released(this);
        }
        continue;
      }
      if (this.#credit <= 0) break;
      const n = Math.min(this.#credit, MAX_DATA_PAYLOAD, head.data.length);
      this.host.send(encodeFrame(head.type, this.id, head.data.subarray(0, n)));
      this.#credit -= n;
      this.#sentBytes += n;
      this.#heldBytes -= n;
      if (n === head.data.length) this.#queue.shift();
      else head.data = head.data.subarray(n);
      this.host.activity();
    }
    this.#setPaused(this.#queue.length > 0 && !this.#done);
  }

  /** Reads `source` into data frames of `type`; its end becomes EOF(`stream`). */
  protected pipeOut(
    source: Readable,
    type: typeof FrameType.STDOUT | typeof FrameType.STDERR,
    stream: number,
  ): void {
    this.#sources.push(source);
    source.on('data', (chunk: Buffer | string) => {
      const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      if (this.#done || data.length === 0) return;
      this.#queue.push({ kind: 'data', type, data });
      this.#heldBytes += data.length;
      this.flush();
    });
    source.on('end', () => this.queue(encodeFrame(FrameType.EOF, this.id, Buffer.from([stream]))));
    source.on('error', () => undefined);
  }

  /** Queues a frame after the output read so far. */
  protected queue(frame: Buffer): void {
    if (this.#done) return;
    this.#queue.push({ kind: 'frame', frame, last: false });
    this.flush();
  }

  /** Queues a JSON frame after the output read so far. */
  protected queueJson(type: typeof FrameType.EXIT | typeof FrameType.ERROR, body: object): void {
    this.queue(encodeJsonFrame(type, this.id, body));
  }

  /** Ends the channel from the server's side: CLOSE after everything queued. */
  protected finish(): void {
    if (this.#done) return;
    this.#queue.push({ kind: 'frame', frame: encodeFrame(FrameType.CLOSE, this.id), last: true });
    this.flush();
  }

  /** Hands client input to the process or socket; `done` once it was taken. */
  protected abstract write(data: Buffer, done: () => void): void;
  /** Kills the process or destroys the socket. */
  protected abstract stop(): void;

  #teardown(): void {
    this.#done = true;
    this.#queue.length = 0;
    this.#heldBytes = 0;
    this.stop();
    for (const source of this.#sources) source.destroy();
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    for (const source of this.#sources) {
      if (paused) source.pause();
      else if (!source.destroyed) source.resume();
    }
  }
}
