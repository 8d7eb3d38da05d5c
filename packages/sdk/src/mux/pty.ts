import type { MuxChannel, MuxExit } from './channel.js';
import type { MuxExecOptions } from './exec.js';
import { FrameType, toBytes, u16Pair } from './frames.js';
import { checkSignal, checkSize, type MuxSignal } from './validate.js';

/** Options of `conn.pty()`. */
export interface MuxPtyOptions extends Omit<MuxExecOptions, 'stdin'> {
  /** The program (default: a login shell, `/bin/bash -l`). */
  command?: string;
  args?: string[];
  /** Columns (default 80). */
  cols?: number;
  /** Rows (default 24). */
  rows?: number;
}

/**
 * A program on a terminal, on a channel of a `SandboxConnection`. Output (stdout and stderr
 * merged) arrives through `onData` or `for await (const chunk of pty)`; output that comes
 * before anyone listens is held (the server ends a terminal whose unread output passes 4 MiB).
 */
export class MuxPty implements AsyncIterable<Uint8Array> {
  /** The process id inside the sandbox. */
  readonly pid: number;
  readonly #listeners = new Set<(chunk: Uint8Array) => void>();
  readonly #endWaiters = new Set<() => void>();
  #pumping = false;
  #ended = false;

  constructor(
    private readonly channel: MuxChannel,
    /** Columns now. */
    public cols: number,
    /** Rows now. */
    public rows: number,
  ) {
    this.pid = channel.pid ?? -1;
  }

  /** Calls `listener` with every chunk of output; answers a function that unsubscribes. */
  onData(listener: (chunk: Uint8Array) => void): () => void {
    this.#listeners.add(listener);
    this.#pump();
    return () => this.#listeners.delete(listener);
  }

  /** Output chunks until the terminal's output ends. */
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
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#endWaiters.add(resolve);
        });
        if (wake) this.#endWaiters.delete(wake);
        wake = null;
      }
    } finally {
      stop();
    }
  }

  /** Types into the terminal (text as UTF-8); resolves once sent within the server's credit. */
  write(data: string | Uint8Array): Promise<void> {
    return this.channel.write(toBytes(data));
  }

  /** Resizes the terminal (1 … 1000 columns and rows). */
  resize(cols: number, rows: number): void {
    checkSize(cols, rows);
    this.channel.control(FrameType.RESIZE, u16Pair(cols, rows));
    this.cols = cols;
    this.rows = rows;
  }

  /** Sends `name` to the terminal's whole process tree. */
  signal(name: MuxSignal): void {
    checkSignal(name);
    this.channel.control(FrameType.SIGNAL, toBytes(name));
  }

  /** How the program ended; rejects when the terminal was closed or ended without an exit. */
  wait(): Promise<MuxExit> {
    return this.channel.exit;
  }

  /** Stops it now: the terminal's processes are killed. */
  close(): Promise<void> {
    return this.channel.close();
  }

  /** Hands the output to the listeners as it arrives, granting its credit back as it goes. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void (async () => {
      try {
        for (;;) {
          const chunk = await this.channel.stdout.read();
          if (chunk === null) break;
          for (const listener of this.#listeners) listener(chunk);
        }
      } catch {
        // The channel closed without its end of output: the iterators end; wait() says why.
      }
      this.#ended = true;
      for (const wake of this.#endWaiters) wake();
      this.#endWaiters.clear();
    })();
  }
}
