import { once } from 'node:events';
import { createGunzip, type Gunzip } from 'node:zlib';
import { RuntimeError } from '../errors.js';
import { TarGuard } from './files-tar-guard.js';

/**
 * Feeds an uploaded archive, plain or gzip (detected by its magic bytes), through TarGuard as
 * it streams past. `write` waits for the decompressor when it is behind, so memory stays flat.
 */
export class ArchiveInspector {
  readonly guard = new TarGuard();
  /** Known after the first two bytes. */
  gzip: boolean | null = null;
  private head: Buffer = Buffer.alloc(0);
  private gunzip: Gunzip | null = null;
  private failure: unknown = null;

  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    let bytes = chunk;
    if (this.gzip === null) {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length < 2) return;
      bytes = this.head;
      this.head = Buffer.alloc(0);
      this.gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
      if (this.gzip) this.startGunzip();
    }
    if (this.gunzip === null) {
      this.guard.write(bytes);
      return;
    }
    if (!this.gunzip.write(bytes))
      await Promise.race([once(this.gunzip, 'drain'), once(this.gunzip, 'close')]);
    this.throwIfFailed();
  }

  /** The upload is complete: throws unless the whole archive was seen and accepted. */
  async end(): Promise<void> {
    this.throwIfFailed();
    if (this.gzip === null) {
      this.gzip = false;
      this.guard.write(this.head);
    }
    if (this.gunzip !== null) {
      const gunzip = this.gunzip;
      const ended = new Promise<void>((resolve) => {
        gunzip.once('end', resolve);
        gunzip.once('close', resolve);
      });
      gunzip.end();
      await ended;
      this.throwIfFailed();
    }
    this.guard.end();
  }

  private startGunzip(): void {
    const gunzip = createGunzip();
    gunzip.on('data', (data: Buffer) => {
      if (this.failure !== null) return;
      try {
        this.guard.write(data);
      } catch (err) {
        this.failure = err;
        gunzip.destroy();
      }
    });
    gunzip.on('error', (err) => {
      this.failure ??= new RuntimeError(
        'INVALID_ARGUMENT',
        `archive refused: bad gzip data (${err.message})`,
        {
          entry: '',
          reason: 'malformed',
        },
      );
    });
    this.gunzip = gunzip;
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}
