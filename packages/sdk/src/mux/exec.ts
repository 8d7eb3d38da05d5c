import type { MuxChannel, MuxExit } from './channel.js';
import { FrameType, toBytes } from './frames.js';
import { checkSignal, type MuxSignal } from './validate.js';

/** Options of `conn.exec()`. */
export interface MuxExecOptions {
  /** Extra environment, merged over the sandbox's (secrets included). */
  env?: Record<string, string>;
  /** Working directory (default: the user's home). */
  cwd?: string;
  /** `user` (default) or `root`. */
  user?: 'user' | 'root';
  /** Kill the process tree after this long; 0 or absent: no limit. */
  timeoutSeconds?: number;
  /** Written to stdin, which is then closed. */
  stdin?: string | Uint8Array;
  /** This channel's receive window in bytes (default 256 KiB): how far output may run ahead of your reading. */
  window?: number;
}

/** Everything a command wrote, and how it ended (`proc.output()`). */
export interface MuxOutput extends MuxExit {
  stdout: string;
  stderr: string;
}

/**
 * A command running on a channel of a `SandboxConnection`. Its output is two web
 * ReadableStreams (`stdout`, `stderr`): the server sends only as fast as you read them (they
 * share one window, so read both, or `cancel()` the one you do not want). Write stdin with
 * `write()` (or pipe into `stdin`), end it with `closeStdin()`.
 */
export class MuxProcess {
  /** The process id inside the sandbox. */
  readonly pid: number;
  /** Its standard output. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** Its standard error. */
  readonly stderr: ReadableStream<Uint8Array>;
  #stdin: WritableStream<Uint8Array> | null = null;

  constructor(private readonly channel: MuxChannel) {
    this.pid = channel.pid ?? -1;
    this.stdout = channel.stdout.stream();
    this.stderr = channel.stderr.stream();
  }

  /** Writes to stdin (text as UTF-8); resolves once sent within the server's credit. */
  write(data: string | Uint8Array): Promise<void> {
    return this.channel.write(toBytes(data));
  }

  /** Closes stdin (after the writes before it): the command reads end-of-file. */
  closeStdin(): Promise<void> {
    return this.channel.endInput();
  }

  /** Its stdin as a web WritableStream (`readable.pipeTo(proc.stdin)`); closing it closes stdin. */
  get stdin(): WritableStream<Uint8Array> {
    this.#stdin ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.closeStdin(),
      abort: () => this.closeStdin(),
    });
    return this.#stdin;
  }

  /** Sends `name` to the command's whole process tree. */
  signal(name: MuxSignal): void {
    checkSignal(name);
    this.channel.control(FrameType.SIGNAL, toBytes(name));
  }

  /**
   * How it ended. Output you have not read is held back (up to the window), so the command
   * may not finish until you read or cancel `stdout` and `stderr`.
   */
  wait(): Promise<MuxExit> {
    return this.channel.exit;
  }

  /** Reads stdout and stderr to the end (as UTF-8 text), then answers with the exit. */
  async output(): Promise<MuxOutput> {
    const [stdout, stderr] = await Promise.all([readText(this.stdout), readText(this.stderr)]);
    return { ...(await this.wait()), stdout, stderr };
  }

  /** Stops it now: the process tree is killed, unread output dropped; `wait()` then rejects. */
  close(): Promise<void> {
    return this.channel.close();
  }
}

/** A byte stream read to its end as UTF-8 text. */
export async function readText(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}
