import type { Readable } from 'node:stream';

/** What a finished write left in the store. */
export interface BlobInfo {
  /** Bytes stored. */
  size: number;
  /** sha256 of the bytes, lowercase hex. */
  sha256: string;
}

/** A byte range `[start, end]`, both inclusive; `end` defaults to the last byte. */
export interface ByteRange {
  start: number;
  end?: number;
}

/**
 * Where large opaque objects (snapshot archives) live, addressed by key. One interface, one
 * file per driver (the filesystem now; an S3-compatible store later), one shared test suite
 * (`test/blobs/suite.ts`) that every driver passes unchanged.
 */
export interface BlobStore {
  /** Driver name: 'fs', 's3' … */
  readonly name: string;
  /**
   * Stores the bytes of `data` under `key`, replacing what was there. Atomic: a reader sees
   * the old object or the whole new one, never a part; a failed write leaves nothing behind.
   */
  put(key: string, data: Readable): Promise<BlobInfo>;
  /**
   * Moves the local file `srcPath` in under `key` (the file is consumed). Drivers on the same
   * disk rename it; others upload it. `sha256`, when the caller already knows it, spares a pass.
   */
  putFile(key: string, srcPath: string, sha256?: string): Promise<BlobInfo>;
  /** The bytes of `key` (or of `range` of it); BlobNotFoundError when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** `{size}` of `key`, or null when absent. */
  stat(key: string): Promise<{ size: number } | null>;
  /** Removes `key`; absent is fine. */
  delete(key: string): Promise<void>;
  /**
   * A local file path holding the bytes of `key`, for drivers that keep objects on this
   * machine (callers that need a file — the runtime's restore — then skip a copy). Undefined
   * for remote drivers; the object must exist.
   */
  path?(key: string): Promise<string>;
}

/** Keys: lowercase segments of `a-z 0-9 _ -` joined by `/`, then optional `.ext` parts. */
export const BLOB_KEY_PATTERN = /^[a-z0-9/_-]+(\.[a-z0-9]+)*$/;
/** The longest key (S3 allows 1024 bytes; leave room for a prefix). */
export const MAX_BLOB_KEY_LENGTH = 512;

/** `key` is not a valid blob key. */
export class InvalidBlobKeyError extends Error {
  override readonly name = 'InvalidBlobKeyError';
  constructor(readonly key: string) {
    super(`invalid blob key ${JSON.stringify(key.slice(0, 100))}`);
  }
}

/** No object under `key`. */
export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`no blob ${JSON.stringify(key)}`);
  }
}

/** A range outside the object (start past the end, or end before start). */
export class BlobRangeError extends Error {
  override readonly name = 'BlobRangeError';
  constructor(
    readonly key: string,
    readonly size: number,
  ) {
    super(`range outside blob ${JSON.stringify(key)} of ${size} bytes`);
  }
}

/**
 * Throws InvalidBlobKeyError unless `key` matches BLOB_KEY_PATTERN with no empty segment, no
 * leading or trailing `/`, no `..` and at most MAX_BLOB_KEY_LENGTH characters.
 */
export function validateBlobKey(key: string): string {
  const ok =
    key.length > 0 &&
    key.length <= MAX_BLOB_KEY_LENGTH &&
    BLOB_KEY_PATTERN.test(key) &&
    !key.startsWith('/') &&
    !key.endsWith('/') &&
    !key.includes('//') &&
    !key.includes('..') &&
    !key.split('/').some((segment) => segment.startsWith('.'));
  if (!ok) throw new InvalidBlobKeyError(key);
  return key;
}

/** The inclusive end of `range` over an object of `size` bytes; BlobRangeError when outside. */
export function resolveRange(key: string, size: number, range: ByteRange): { start: number; end: number } {
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isSafeInteger(range.start) || range.start < 0 || range.start >= size || end < range.start) {
    throw new BlobRangeError(key, size);
  }
  return { start: range.start, end };
}
