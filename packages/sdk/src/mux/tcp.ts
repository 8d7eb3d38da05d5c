import type { MuxChannel } from './channel.js';
import { toBytes } from './frames.js';

/**
 * A byte stream to a port inside the sandbox, on a channel of a `SandboxConnection`: read it
 * with `read()` or `readable`, send with `write()` or `writable`; `end()` half-closes (the port
 * sees end-of-file), `close()` drops the stream at once.
 */
export class MuxTcpStream {
  /** Resolves once the channel is finished (both directions done, or reset, or closed). */
  readonly closed: Promise<void>;
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  constructor(
    private readonly channel: MuxChannel,
    /** The port inside the sandbox. */
    readonly port: number,
  ) {
    this.closed = channel.closed;
  }

  /** The next bytes received, or null once the port's side stopped sending. */
  read(): Promise<Uint8Array | null> {
    return this.channel.stdout.read();
  }

  /** Sends bytes (text as UTF-8); resolves once sent within the server's credit. */
  write(data: string | Uint8Array): Promise<void> {
    return this.channel.write(toBytes(data));
  }

  /** Half-closes: no more bytes from this side (after the writes before it). */
  end(): Promise<void> {
    return this.channel.endInput();
  }

  /** Drops the stream now (both directions). */
  close(): Promise<void> {
    return this.channel.close();
  }

  /** The received bytes as a web ReadableStream (cancelling it drops the stream). */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = await this.read();
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        },
        cancel: () => this.close(),
      },
      { highWaterMark: 0 },
    );
    return this.#readable;
  }

  /** The sending side as a web WritableStream (closing it half-closes, aborting drops the stream). */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.end(),
      abort: () => this.close(),
    });
    return this.#writable;
  }
}
