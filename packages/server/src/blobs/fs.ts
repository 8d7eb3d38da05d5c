import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type BlobInfo,
  BlobNotFoundError,
  type BlobStore,
  type ByteRange,
  resolveRange,
  validateBlobKey,
} from './interface.js';

/** Temp files older than this (a write cut short by a crash) are swept on the first write. */
const STALE_TEMP_MS = 24 * 3600_000; // one day

/**
 * Blobs as files under one directory: `<root>/<key>`, written to `<root>/.tmp/` and renamed
 * into place (keys never start a segment with `.`, so no key reaches the temp directory).
 * Writes are atomic against readers and process crashes; they are not fsynced.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly name = 'fs';
  readonly #root: string;
  readonly #tmp: string;
  #swept = false;

  constructor(root: string) {
    this.#root = root;
    this.#tmp = join(root, '.tmp');
  }

  async put(key: string, data: Readable): Promise<BlobInfo> {
    const dest = this.#file(key);
    const tmp = await this.#tempPath();
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        data,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp, { mode: 0o600 }),
      );
      await mkdir(dirname(dest), { recursive: true });
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { size, sha256: hash.digest('hex') };
  }

  async putFile(key: string, srcPath: string, sha256?: string): Promise<BlobInfo> {
    const dest = this.#file(key);
    await mkdir(dirname(dest), { recursive: true });
    try {
      await rename(srcPath, dest);
    } catch (err) {
      // Another filesystem: copy through a temp file (still atomic), then drop the source.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const info = await this.put(key, createReadStream(srcPath));
      await rm(srcPath, { force: true });
      return info;
    }
    const { size } = await stat(dest);
    return { size, sha256: sha256 ?? (await hashFile(dest)) };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.#file(key);
    const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      throw isAbsent(err) ? new BlobNotFoundError(key) : err;
    });
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new BlobNotFoundError(key);
      if (!range) return handle.createReadStream();
      const { start, end } = resolveRange(key, info.size, range);
      return handle.createReadStream({ start, end });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(key: string): Promise<{ size: number } | null> {
    try {
      const info = await stat(this.#file(key));
      return info.isFile() ? { size: info.size } : null;
    } catch (err) {
      if (isAbsent(err as NodeJS.ErrnoException)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.#file(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (isAbsent(err as NodeJS.ErrnoException) || code === 'EISDIR' || code === 'EPERM') return;
      throw err;
    }
    // Drop the directories the key made, while empty, up to the root.
    for (let dir = dirname(file); dir.startsWith(`${this.#root}/`); dir = dirname(dir)) {
      if (
        !(await rmdir(dir).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  }

  async path(key: string): Promise<string> {
    const file = this.#file(key);
    if (!(await this.stat(key))) throw new BlobNotFoundError(key);
    return file;
  }

  #file(key: string): string {
    return join(this.#root, validateBlobKey(key));
  }

  async #tempPath(): Promise<string> {
    await mkdir(this.#tmp, { recursive: true, mode: 0o700 });
    if (!this.#swept) {
      this.#swept = true;
      await sweepStale(this.#tmp);
    }
    return join(this.#tmp, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }
}

function isAbsent(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ENOENT' || err.code === 'ENOTDIR';
}

/** sha256 (hex) of a file's bytes. */
async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sweepStale(dir: string): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (info && info.mtimeMs < cutoff) await rm(path, { force: true, recursive: true });
  }
}
