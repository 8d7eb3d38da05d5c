import type { Duplex } from 'node:stream';
import type { ExecProcess, ExitStatus, PtyProcess } from '@corral/runtime';
import { Channel, type ChannelHost } from './channel.js';
import { FrameType, Stream } from './frames.js';

/** The EXIT payload of a status. */
function exitBody(status: ExitStatus): object {
  return { exit_code: status.exitCode, signal: status.signal, timed_out: status.timedOut };
}

const WAIT_FAILED = {
  error: { code: 'INTERNAL', message: 'The process could not be waited for', details: {} },
};

/** A process started through exec: STDIN → stdin, stdout → STDOUT, stderr → STDERR, then EXIT. */
export class ExecChannel extends Channel {
  readonly kind = 'exec';

  constructor(
    host: ChannelHost,
    id: number,
    window: number,
    readonly proc: ExecProcess,
  ) {
    super(host, id, window);
    proc.stdin.on('error', () => undefined);
  }

  begin(): void {
    const proc = this.proc;
    const ends = [proc.stdout, proc.stderr].map(
      (s) => new Promise<void>((resolve) => s.once('end', resolve).once('close', resolve)),
    );
    this.pipeOut(proc.stdout, FrameType.STDOUT, Stream.STDOUT);
    this.pipeOut(proc.stderr, FrameType.STDERR, Stream.STDERR);
    Promise.all([proc.wait(), ...ends]).then(
      ([status]) => {
        this.queueJson(FrameType.EXIT, exitBody(status));
        this.finish();
      },
      () => {
        this.queueJson(FrameType.ERROR, WAIT_FAILED);
        this.finish();
      },
    );
  }

  protected write(data: Buffer, done: () => void): void {
    const stdin = this.proc.stdin;
    if (stdin.writableEnded || stdin.destroyed) {
      done();
      return;
    }
    stdin.write(data, () => done());
  }

  endInput(): void {
    if (!this.proc.stdin.writableEnded) this.proc.stdin.end();
  }

  override signal(signal: NodeJS.Signals): boolean {
    this.proc.kill(signal);
    return true;
  }

  protected stop(): void {
    this.proc.kill('SIGKILL');
    this.proc.stdin.destroy();
  }
}

/**
 * A process on a terminal: STDIN → keystrokes, output → STDOUT, RESIZE, then EXIT. The
 * runtime's terminal output has backpressure at its source: while the client grants no window
 * the channel pauses it (Channel.flush), the terminal is not read and the program blocks on
 * write, so a fast producer holds only about one chunk here — no backlog limit is needed.
 */
export class PtyChannel extends Channel {
  readonly kind = 'pty';

  constructor(
    host: ChannelHost,
    id: number,
    window: number,
    readonly pty: PtyProcess,
  ) {
    super(host, id, window);
  }

  begin(): void {
    const pty = this.pty;
    const ended = new Promise<void>((resolve) => pty.output.once('end', resolve).once('close', resolve));
    this.pipeOut(pty.output, FrameType.STDOUT, Stream.STDOUT);
    Promise.all([pty.wait(), ended]).then(
      ([status]) => {
        this.queueJson(FrameType.EXIT, exitBody(status));
        this.finish();
      },
      () => {
        this.queueJson(FrameType.ERROR, WAIT_FAILED);
        this.finish();
      },
    );
  }

  /** The bytes go to the terminal unchanged; the window comes back once the kernel has them. */
  protected write(data: Buffer, done: () => void): void {
    void this.pty.write(data).then(done);
  }

  /** A terminal has no end of input of its own: the client types ^D (0x04) instead. */
  endInput(): void {}

  override resize(cols: number, rows: number): boolean {
    this.pty.resize(cols, rows);
    return true;
  }

  override signal(signal: NodeJS.Signals): boolean {
    this.pty.kill(signal);
    return true;
  }

  protected stop(): void {
    this.pty.kill('SIGKILL');
  }
}

/** A TCP connection to a port inside the sandbox: STDIN → the socket, the socket → STDOUT. */
export class TcpChannel extends Channel {
  readonly kind = 'tcp';
  #readEnded = false;
  #writeEnded = false;

  constructor(
    host: ChannelHost,
    id: number,
    window: number,
    readonly socket: Duplex,
  ) {
    super(host, id, window);
    socket.on('error', () => undefined);
  }

  begin(): void {
    const socket = this.socket;
    this.pipeOut(socket, FrameType.STDOUT, Stream.STDOUT);
    socket.on('end', () => {
      this.#readEnded = true;
      if (this.#writeEnded) this.finish();
    });
    socket.on('finish', () => {
      this.#writeEnded = true;
      if (this.#readEnded) this.finish();
    });
    socket.on('close', () => this.finish());
  }

  protected write(data: Buffer, done: () => void): void {
    if (this.socket.writableEnded || this.socket.destroyed) {
      done();
      return;
    }
    this.socket.write(data, () => done());
  }

  endInput(): void {
    if (!this.socket.writableEnded) this.socket.end();
  }

  protected stop(): void {
    this.socket.destroy();
  }
}
