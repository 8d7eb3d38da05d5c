import { apiError } from './errors.js';

/** An inclusive byte range of a resource of known size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The range a `Range` header asks for in a resource of `size` bytes (RFC 9110 §14.1.2): one
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`. Null means "send it whole": no header, another unit,
 * a malformed one, or several ranges (which a server may ignore). A single range that cannot
 * be satisfied throws 400 BAD_REQUEST `{range, size}` — the API's catalogue has no 416.
 * `what` names the resource in the message ("file", "archive").
 */
export function parseRange(header: string | undefined, size: number, what = 'file'): ByteRange | null {
  if (header === undefined) return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  let start: number;
  let end: number;
  if (first === '') {
    const suffix = Number(last);
    // "-0" selects nothing.
    start = suffix === 0 ? size : Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return null; // invalid syntax: ignored
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start >= size || end < start) {
    throw apiError(
      'BAD_REQUEST',
      { range: header.slice(0, 100), size },
      `Range ${header.slice(0, 100)} cannot be satisfied for a ${what} of ${size} bytes`,
    );
  }
  return { start, end };
}
