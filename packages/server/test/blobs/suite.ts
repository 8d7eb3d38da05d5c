import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  BlobRangeError,
  type BlobStore,
  InvalidBlobKeyError,
} from '../../src/blobs/index.js';

/** A driver under test and how to tear it down. */
export interface BlobStoreFixture {
  store: BlobStore;
  close(): Promise<void>;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A stream of `bytes` in chunks of `chunk` bytes. */
function chunked(bytes: Buffer, chunk = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  return Readable.from(parts);
}

/** A stream that yields `head` then fails. */
function failing(head: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield head;
      throw new Error('source broke');
    })(),
  );
}

/**
 * The one suite every blob-store driver must pass unchanged (STYLE.md "Pluggable parts look
 * alike"): each driver's test file calls this with a factory for a fresh, empty store.
 */
export function blobStoreSuite(name: string, open: () => Promise<BlobStoreFixture>): void {
  describe(`blob store: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;
    let scratch: string;
    beforeAll(async () => {
      fixture = await open();
      store = fixture.store;
      scratch = await mkdtemp(join(tmpdir(), 'corral-blob-src-'));
    });
    afterAll(async () => {
      await fixture?.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it('stores a stream and answers its size and sha256; get returns the same bytes', async () => {
      const bytes = randomBytes(3 * 1024 * 1024 + 17);
      const info = await store.put('objects/one.bin', chunked(bytes));
      expect(info).toEqual({ size: bytes.length, sha256: sha256(bytes) });
      expect(await store.stat('objects/one.bin')).toEqual({ size: bytes.length });
      expect(sha256(await readAll(await store.get('objects/one.bin')))).toBe(sha256(bytes));
    });

    it('stores an empty object', async () => {
      const info = await store.put('empty', Readable.from([]));
      expect(info).toEqual({ size: 0, sha256: sha256(Buffer.alloc(0)) });
      expect(await readAll(await store.get('empty'))).toEqual(Buffer.alloc(0));
    });

    it('reads byte ranges (inclusive end, open end, end clamped to the object)', async () => {
      const bytes = Buffer.from('0123456789abcdef');
      await store.put('ranges/r.txt', chunked(bytes, 5));
      expect((await readAll(await store.get('ranges/r.txt', { start: 2, end: 5 }))).toString()).toBe('2345');
      expect((await readAll(await store.get('ranges/r.txt', { start: 10 }))).toString()).toBe('abcdef');
      expect((await readAll(await store.get('ranges/r.txt', { start: 15, end: 99 }))).toString()).toBe('f');
      await expect(store.get('ranges/r.txt', { start: 16 })).rejects.toBeInstanceOf(BlobRangeError);
      await expect(store.get('ranges/r.txt', { start: 5, end: 4 })).rejects.toBeInstanceOf(BlobRangeError);
    });

    it('replaces atomically: a reader that started before the replace reads the whole old object', async () => {
      const old = randomBytes(256 * 1024);
      const next = randomBytes(300 * 1024);
      await store.put('replace/x', chunked(old));
      const reader = await store.get('replace/x');
      const info = await store.put('replace/x', chunked(next));
      expect(info.sha256).toBe(sha256(next));
      expect(sha256(await readAll(reader))).toBe(sha256(old));
      expect(sha256(await readAll(await store.get('replace/x')))).toBe(sha256(next));
    });

    it('a write whose source fails leaves nothing (and keeps what was there)', async () => {
      await expect(store.put('broken/new', failing(randomBytes(1024)))).rejects.toThrow('source broke');
      expect(await store.stat('broken/new')).toBeNull();
      const kept = Buffer.from('kept');
      await store.put('broken/old', Readable.from([kept]));
      await expect(store.put('broken/old', failing(randomBytes(1024)))).rejects.toThrow('source broke');
      expect(await readAll(await store.get('broken/old'))).toEqual(kept);
    });

    it('concurrent writes to one key leave one of them whole', async () => {
      const a = randomBytes(512 * 1024);
      const b = randomBytes(512 * 1024);
      await Promise.all([store.put('race/k', chunked(a)), store.put('race/k', chunked(b))]);
      const got = sha256(await readAll(await store.get('race/k')));
      expect([sha256(a), sha256(b)]).toContain(got);
    });

    it('takes a local file in (the source is consumed), with or without a known digest', async () => {
      const bytes = randomBytes(200 * 1024);
      const src = join(scratch, 'archive.tar.zst');
      await writeFile(src, bytes);
      expect(await store.putFile('files/a.tar.zst', src)).toEqual({
        size: bytes.length,
        sha256: sha256(bytes),
      });
      await expect(stat(src)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(sha256(await readAll(await store.get('files/a.tar.zst')))).toBe(sha256(bytes));

      await writeFile(src, bytes);
      const known = await store.putFile('files/b', src, sha256(bytes));
      expect(known).toEqual({ size: bytes.length, sha256: sha256(bytes) });
    });

    it('missing objects: stat null, get and path BlobNotFoundError, delete is a no-op', async () => {
      expect(await store.stat('nothing/here')).toBeNull();
      await expect(store.get('nothing/here')).rejects.toBeInstanceOf(BlobNotFoundError);
      if (store.path) await expect(store.path('nothing/here')).rejects.toBeInstanceOf(BlobNotFoundError);
      await store.delete('nothing/here');
    });

    it('deletes: the object is gone afterwards, siblings stay', async () => {
      await store.put('del/a', Readable.from([Buffer.from('a')]));
      await store.put('del/b', Readable.from([Buffer.from('b')]));
      await store.delete('del/a');
      expect(await store.stat('del/a')).toBeNull();
      await expect(store.get('del/a')).rejects.toBeInstanceOf(BlobNotFoundError);
      expect((await readAll(await store.get('del/b'))).toString()).toBe('b');
      await store.delete('del/a');
    });

    it('path(), where offered, names a local file with the bytes', async () => {
      if (!store.path) return;
      const bytes = randomBytes(4096);
      await store.put('local/p.bin', chunked(bytes));
      expect(await readFile(await store.path('local/p.bin'))).toEqual(bytes);
    });

    it('rejects invalid keys on every operation', async () => {
      const bad = [
        '',
        '../escape',
        'a/../b',
        '/abs',
        'trail/',
        'a//b',
        '.hidden',
        'a/.tmp/x',
        'Upper',
        'sp ace',
        'a\u0000b',
        'x'.repeat(513),
      ];
      for (const key of bad) {
        await expect(store.put(key, Readable.from([Buffer.from('x')])), key).rejects.toBeInstanceOf(
          InvalidBlobKeyError,
        );
        await expect(store.get(key), key).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.stat(key), key).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.delete(key), key).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.putFile(key, join(scratch, 'none')), key).rejects.toBeInstanceOf(
          InvalidBlobKeyError,
        );
      }
      // Valid shapes: nested segments and extensions.
      await store.put('snapshots/ab_c-1/x.tar.zst', Readable.from([Buffer.from('ok')]));
      expect(await store.stat('snapshots/ab_c-1/x.tar.zst')).toEqual({ size: 2 });
    });
  });
}
