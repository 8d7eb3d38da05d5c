import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FileInfo, SandboxFiles } from '@corral/runtime';
import { SANDBOX_USER_GID, SANDBOX_USER_UID } from '@corral/runtime';

/** Bytes a write handle may hold out of order (waiting for the gap before them): 64 MiB. */
const MAX_PENDING_WRITE_BYTES = 64 * 1024 * 1024;
/** A forward read this far past the buffered data reopens the stream there instead of skipping. */
const MAX_SKIP_BYTES = 1024 * 1024;

/** An SFTP failure with its status code (`ssh2.utils.sftp.STATUS_CODE`). */
export class SftpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** SFTP attributes of a file as the runtime describes it (owner: the sandbox user). */
export function attrsOf(info: Pick<FileInfo, 'type' | 'mode' | 'size' | 'mtime'>) {
  const typeBits =
    info.type === 'directory'
      ? 0o040000
      : info.type === 'symlink'
        ? 0o120000
        : info.type === 'file'
          ? 0o100000
          : 0;
  const seconds = Math.floor(Date.parse(info.mtime) / 1000) || 0;
  return {
    mode: typeBits | (info.mode & 0o7777),
    uid: SANDBOX_USER_UID,
    gid: SANDBOX_USER_GID,
    size: info.size,
    atime: seconds,
    mtime: seconds,
  };
}

/** An `ls -l` line for READDIR's `longname`. */
export function longnameOf(info: FileInfo): string {
  const kind = info.type === 'directory' ? 'd' : info.type === 'symlink' ? 'l' : '-';
  let perms = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (info.mode >> shift) & 7;
    perms += `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  }
  const date = new Date(info.mtime);
  const month = date.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const time = `${String(date.getUTCHours()).padStart(2, '0')}:${String(date.getUTCMinutes()).padStart(2, '0')}`;
  const when = `${month} ${String(date.getUTCDate()).padStart(2, ' ')} ${time}`;
  return `${kind}${perms}    1 user     user     ${String(info.size).padStart(8, ' ')} ${when} ${info.name}`;
}

/**
 * A file opened for reading: one stream from the runtime, read forward as the client asks for
 * consecutive ranges (OpenSSH pipelines them in order); a jump backwards or far ahead reopens
 * the stream at that offset. Only what the client asked for next is buffered.
 */
export class FileReader {
  #iterator: AsyncIterator<Buffer> | null = null;
  #buffer = Buffer.alloc(0);
  #bufferStart = 0;
  #eof = false;

  constructor(
    private readonly files: SandboxFiles,
    private readonly sandboxId: string,
    readonly path: string,
  ) {}

  /** Up to `length` bytes at `offset`; null at end of file. */
  async read(offset: number, length: number): Promise<Buffer | null> {
    const end = this.#bufferStart + this.#buffer.length;
    if (this.#iterator === null || offset < this.#bufferStart || offset > end + MAX_SKIP_BYTES) {
      await this.#open(offset);
    }
    while (this.#bufferStart + this.#buffer.length < offset + length && !this.#eof) {
      const next = await this.#iterator!.next();
      if (next.done) this.#eof = true;
      else this.#buffer = Buffer.concat([this.#buffer, next.value]);
    }
    if (offset > this.#bufferStart) {
      this.#buffer = this.#buffer.subarray(Math.min(offset - this.#bufferStart, this.#buffer.length));
      this.#bufferStart = offset;
    }
    if (this.#buffer.length === 0) return null;
    return Buffer.from(this.#buffer.subarray(0, length));
  }

  async #open(offset: number): Promise<void> {
    await this.close();
    const stream = await this.files.read(this.sandboxId, this.path, { start: offset });
    this.#iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.#buffer = Buffer.alloc(0);
    this.#bufferStart = offset;
    this.#eof = false;
  }

  async close(): Promise<void> {
    const iterator = this.#iterator;
    this.#iterator = null;
    await iterator?.return?.().catch(() => undefined);
  }
}

/**
 * A file opened for writing: the client's writes stream, in offset order, into one
 * `files.write` (atomic: the file appears, whole, on close). Writes ahead of a gap wait (up to
 * MAX_PENDING_WRITE_BYTES); a write behind what was written already is refused.
 */
export class FileWriter {
  readonly #pass = new PassThrough({ highWaterMark: 1024 * 1024 });
  readonly #done: Promise<number>;
  readonly #pending = new Map<number, Buffer>();
  #pendingBytes = 0;
  #position = 0;
  #failed: Error | null = null;

  constructor(
    files: SandboxFiles,
    sandboxId: string,
    readonly path: string,
    mode: number | undefined,
  ) {
    this.#done = files.write(sandboxId, path, this.#pass, mode === undefined ? {} : { mode: mode & 0o7777 });
    this.#done.catch((err: Error) => {
      this.#failed = err;
    });
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#position;
  }

  async write(offset: number, data: Buffer, unsupported: number): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (offset < this.#position)
      throw new SftpFailure(unsupported, 'rewriting written bytes is not supported');
    if (offset > this.#position) {
      this.#pendingBytes += data.length;
      if (this.#pendingBytes > MAX_PENDING_WRITE_BYTES)
        throw new SftpFailure(unsupported, 'writes too far out of order');
      this.#pending.set(offset, data);
      return;
    }
    await this.#push(data);
    for (let next = this.#pending.get(this.#position); next; next = this.#pending.get(this.#position)) {
      this.#pending.delete(this.#position);
      this.#pendingBytes -= next.length;
      await this.#push(next);
    }
  }

  async #push(data: Buffer): Promise<void> {
    this.#position += data.length;
    if (this.#pass.write(data)) return;
    await Promise.race([once(this.#pass, 'drain'), this.#done]);
    if (this.#failed) throw this.#failed;
  }

  /** Ends the file and waits until it is in place. */
  async close(unsupported: number): Promise<void> {
    if (this.#pending.size > 0) {
      this.abort();
      throw new SftpFailure(unsupported, 'the file has a hole (writes missing before the last ones)');
    }
    this.#pass.end();
    await this.#done;
  }

  /** Drops the file (the connection went away before close). */
  abort(): void {
    this.#pass.destroy(new Error('the SFTP session ended before the file was closed'));
  }
}
