import { readSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { IPty } from '@lydell/node-pty';
import { RuntimeError } from '../errors.js';

/**
 * What node-pty (@lydell/node-pty 1.1.0, unixTerminal.js) keeps private and we rely on:
 * `_socket` is the tty.ReadStream over the pty master, `_fd` the master fd, and `_emittedClose`
 * the flag that makes its exit handler emit `exit` at once instead of arming a timer that
 * destroys the socket 200 ms later (DESTROY_SOCKET_TIMEOUT_MS).
 */
interface NodePtyInternals {
  _socket?: Socket;
  _fd?: number;
  _emittedClose?: boolean;
}

/** The output, input and exit of a node-pty terminal, with backpressure at the source. */
export interface PtyStreams {
  /**
   * Every byte the program wrote to the terminal. While it is not read (paused, or its buffer
   * is full) the master is not read either, so the program blocks on write; it ends after the
   * last byte, even when the program exited while nobody was reading.
   */
  output: Readable;
  /** Hand bytes to the terminal unchanged; resolves once the kernel has them (or they were dropped because the terminal is gone). */
  write(data: string | Uint8Array): Promise<void>;
  /** node-pty's exit report for its child, as soon as it exits, whether or not the output was read. */
  exited: Promise<{ exitCode: number; signal?: number }>;
}

/** Output buffered on our side before the master stops being read. */
const OUTPUT_HIGH_WATER_MARK = 64 * 1024;
const DRAIN_CHUNK = 64 * 1024;

/**
 * Take over a node-pty terminal's master (spawned with `encoding: null`).
 *
 * Why this shape (the alternatives were tried or read in node-pty's source):
 * - node-pty's socket is a tty.ReadStream (readableHighWaterMark 0): pausing it makes Node stop
 *   reading the master after at most one more chunk, so the kernel's pty buffer fills and the
 *   program blocks — real backpressure. `output` pauses it when its own buffer is full and
 *   resumes it when read.
 * - node-pty destroys a paused socket 200 ms after its child exits, dropping what was not read.
 *   Setting `_emittedClose` disables that timer (node-pty then reports the exit at once, which
 *   `exited` needs); Linux keeps a closed slave's unread output in the master until it is read,
 *   so the socket lives until the master reports its end.
 * - libuv ends a stream on POLLHUP after a short read, but a pty master returns at most ~4 KiB
 *   per read while the kernel may hold more: at that (premature) end the rest is read here
 *   synchronously from the non-blocking master fd (still open during the 'end' event) until
 *   EIO/EAGAIN, so nothing the program wrote is lost.
 * - Input goes to the socket as bytes, never re-encoded; a failed write (EIO once the slave is
 *   closed) must not destroy the socket — that would discard the output not read yet — so
 *   write errors resolve the write instead of reaching the stream.
 */
export function ptyStreams(term: IPty): PtyStreams {
  const internals = term as unknown as NodePtyInternals;
  const socket = internals._socket;
  const fd = internals._fd;
  if (!socket || typeof fd !== 'number' || typeof internals._emittedClose !== 'boolean') {
    throw new RuntimeError('INTERNAL', 'unsupported node-pty version: no master socket to read');
  }
  internals._emittedClose = true;
  const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) => term.onExit(resolve));

  let ended = false;
  const output = new Readable({
    highWaterMark: OUTPUT_HIGH_WATER_MARK,
    read: () => {
      if (!ended) socket.resume();
    },
    destroy: (err, callback) => {
      ended = true;
      socket.destroy();
      callback(err);
    },
  });
  const finish = () => {
    if (ended) return;
    ended = true;
    output.push(null);
  };
  socket.on('data', (chunk: Buffer) => {
    if (ended) return;
    if (!output.push(chunk)) socket.pause();
  });
  socket.on('end', () => {
    if (!ended) drainMaster(fd, (bytes) => output.push(bytes));
    finish();
  });
  // EIO on read comes only once the master is empty; any other error ends the output too.
  socket.on('error', () => undefined);
  socket.on('close', finish);
  // Start paused: nothing is read before a consumer asks for it.
  socket.pause();

  const write = (data: string | Uint8Array): Promise<void> => {
    if (socket.destroyed || !socket.writable) return Promise.resolve();
    const bytes =
      typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return new Promise((resolve) => {
      socket.write(bytes, () => resolve());
    });
  };
  swallowWriteErrors(socket);
  return { output, write, exited };
}

/** Read what the kernel still holds for a master whose slave side has closed. */
function drainMaster(fd: number, push: (bytes: Buffer) => void): void {
  const buffer = Buffer.allocUnsafe(DRAIN_CHUNK);
  for (;;) {
    let n = 0;
    try {
      n = readSync(fd, buffer, 0, DRAIN_CHUNK, null);
    } catch {
      return; // EIO: empty and closed; EAGAIN: nothing more now; EBADF: already closed
    }
    if (n <= 0) return;
    push(Buffer.from(buffer.subarray(0, n)));
  }
}

type WriteCallback = (error?: Error | null) => void;

/**
 * Route the socket's write failures to the write's own callback only: a Writable destroys
 * itself on a write error, which would close the master with unread output in it.
 */
function swallowWriteErrors(socket: Socket): void {
  const writable = socket as unknown as {
    _write: (chunk: unknown, encoding: BufferEncoding, callback: WriteCallback) => void;
    _writev?: (chunks: unknown[], callback: WriteCallback) => void;
  };
  const write = writable._write.bind(socket);
  writable._write = (chunk, encoding, callback) => write(chunk, encoding, () => callback());
  const writev = writable._writev?.bind(socket);
  if (writev) writable._writev = (chunks, callback) => writev(chunks, () => callback());
}
