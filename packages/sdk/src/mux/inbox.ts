/**
 * The bytes received on one output stream of a channel, handed out as the application reads
 * them. Every chunk read (or discarded) gives its size back to `consumed`, which grants the
 * server that much more credit: a reader that stops reading stops the producer.
 */
export class Inbox {
  readonly #queue: Uint8Array[] = [];
  readonly #waiters: (() => void)[] = [];
  #ended = false;
  #error: unknown = null;
  #discarding = false;
  #buffered = 0;

  constructor(private readonly consumed: (bytes: number) => void) {}

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** True once the stream ended (its queued bytes may still be unread). */
  get ended(): boolean {
    return this.#ended;
  }

  /** A chunk arrived. */
  push(chunk: Uint8Array): void {
    if (this.#ended) return;
    if (this.#discarding) {
      this.consumed(chunk.length);
      return;
    }
    this.#queue.push(chunk);
    this.#buffered += chunk.length;
    this.#wake();
  }

  /** No more chunks: readers get what is queued, then the end (or `error`). */
  end(error: unknown = null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#wake();
  }

  /** The next chunk, or null at the end; throws the stream's error after the queued chunks. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk) {
        this.#buffered -= chunk.length;
        this.consumed(chunk.length);
        return chunk;
      }
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return null;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Drops what is queued and everything that arrives later, granting its credit back at once. */
  discard(): void {
    this.#discarding = true;
    const dropped = this.#buffered;
    this.#queue.length = 0;
    this.#buffered = 0;
    if (dropped > 0) this.consumed(dropped);
  }

  /** A web ReadableStream over this inbox: pulled only while someone reads; cancel discards. */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = await this.read();
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        },
        cancel: () => this.discard(),
      },
      { highWaterMark: 0 },
    );
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
