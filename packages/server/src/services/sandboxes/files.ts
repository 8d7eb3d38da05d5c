import type { IncomingHttpHeaders } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { FileInfo } from '@corral/runtime';
import { isRuntimeError } from '@corral/runtime';
import { apiError, isApiError } from '../../errors.js';

/** The sandbox user's home: the default directory of the file routes. */
export const SANDBOX_HOME = '/home/user';

/**
 * A raw request body handed to an upload route by its content-type parser. The stream sits in
 * a private field so generic body walkers (the NUL input guard) see an empty object, never the
 * socket graph behind an IncomingMessage.
 */
export class RawBody {
  readonly #stream: Readable;
  constructor(stream: Readable) {
    this.#stream = stream;
  }
  get stream(): Readable {
    return this.#stream;
  }
}

/** A file entry as the API shows it: the runtime's FileInfo with `mode` as an octal string. */
export function fileView(info: FileInfo) {
  return {
    name: info.name,
    path: info.path,
    type: info.type,
    size: info.size,
    mode: formatMode(info.mode),
    mtime: info.mtime,
  };
}

/** Permission bits as a 4-digit octal string: 0o644 → "0644", 0o4755 → "4755". */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** `?mode=` ("755", "0644", "4755") → permission bits; undefined when absent. */
export function parseMode(mode: string | undefined): number | undefined {
  if (mode === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(mode)) {
    throw apiError('VALIDATION_ERROR', {
      in: 'querystring',
      fields: [{ path: '/mode', message: 'must be 3 or 4 octal digits, e.g. 0644' }],
    });
  }
  return Number.parseInt(mode, 8);
}

export { type ByteRange, parseRange } from '../../http-range.js';

/** 413 PAYLOAD_TOO_LARGE for an upload over `limitBytes`. */
export function uploadTooLarge(limitBytes: number) {
  return apiError('PAYLOAD_TOO_LARGE', { limit_bytes: limitBytes });
}

/** Throws 413 up front when the request declares a Content-Length over `limitBytes`. */
export function checkDeclaredLength(headers: IncomingHttpHeaders, limitBytes: number): void {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw uploadTooLarge(limitBytes);
}

/**
 * A pass-through that counts bytes and fails with 413 once more than `limitBytes` went by, so
 * an upload without (or with a lying) Content-Length is cut off while it streams.
 */
export class ByteLimit extends Transform {
  bytes = 0;
  exceeded = false;
  readonly #limitBytes: number;
  constructor(limitBytes: number) {
    super({ highWaterMark: 1024 * 1024 });
    this.#limitBytes = limitBytes;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limitBytes) {
      this.exceeded = true;
      callback(uploadTooLarge(this.#limitBytes));
      return;
    }
    callback(null, chunk);
  }
}

/**
 * Feeds the request body through a ByteLimit into `consume` (a runtime write or tarIn). The
 * request stream is never destroyed (so the 413 answer can still reach the client); when the
 * limit trips it is unpiped and the runtime side sees the error and discards its temp file.
 * A null source (no body at all) is an empty upload.
 */
export async function withLimitedBody<T>(
  source: Readable | null,
  limitBytes: number,
  consume: (data: Readable) => Promise<T>,
): Promise<{ result: T; bytes: number }> {
  const body = source ?? Readable.from([]);
  const limit = new ByteLimit(limitBytes);
  const onError = (err: Error) => limit.destroy(err);
  body.on('error', onError);
  body.pipe(limit);
  limit.once('error', () => {
    body.unpipe(limit);
    body.off('error', onError);
  });
  try {
    const result = await consume(limit);
    return { result, bytes: limit.bytes };
  } catch (err) {
    if (limit.exceeded) throw uploadTooLarge(limitBytes);
    if (isApiError(err)) throw err;
    // The client went away or sent a broken body: not a runtime fault.
    if (!isRuntimeError(err) && body.destroyed) {
      throw apiError('BAD_REQUEST', {}, 'The request body ended early');
    }
    throw err;
  } finally {
    body.off('error', onError);
  }
}

/** A file name safe inside a quoted Content-Disposition filename (ASCII, no quotes). */
export function attachmentName(path: string, suffix: string): string {
  const base = path === '/' ? 'root' : (path.split('/').filter(Boolean).pop() ?? 'archive');
  const safe = base.replace(/[^A-Za-z0-9._-]/g, '_') || 'archive';
  return `${safe}${suffix}`;
}

/** The absolute, normal form of a caller's path (relative paths start at the home directory). */
export function absolutePath(path: string): string {
  const absolute = path.startsWith('/') ? path : `${SANDBOX_HOME}/${path}`;
  const parts: string[] = [];
  for (const part of absolute.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}
