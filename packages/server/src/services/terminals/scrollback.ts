/**
 * The most recent output of a terminal, bounded: appends keep the last `capacityBytes` bytes
 * and drop the oldest. A reattaching client gets `snapshot()` before the live output.
 */
export class Scrollback {
  readonly #capacityBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;

  constructor(capacityBytes: number) {
    this.#capacityBytes = capacityBytes;
  }

  /** Bytes held now (at most the capacity). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends `chunk`, dropping the oldest bytes past the capacity. */
  append(chunk: Buffer): void {
    if (chunk.length >= this.#capacityBytes) {
      this.#chunks = [Buffer.from(chunk.subarray(chunk.length - this.#capacityBytes))];
      this.#bytes = this.#capacityBytes;
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.#capacityBytes) {
      const first = this.#chunks[0]!;
      const excess = this.#bytes - this.#capacityBytes;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#bytes -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#bytes -= excess;
      }
    }
    // Many tiny chunks (keystroke echoes) are merged now and then so the array stays short.
    if (this.#chunks.length > 256) this.#chunks = [Buffer.concat(this.#chunks)];
  }

  /** A copy of everything held, oldest first. */
  snapshot(): Buffer {
    return Buffer.concat(this.#chunks, this.#bytes);
  }
}
