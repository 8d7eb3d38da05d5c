/*
 * What the SDK accepts as file or archive content, turned into a fetch body without any
 * Node-only import: a Node Readable is recognised by being async-iterable.
 */

/** File content to upload: text (UTF-8), bytes, a Blob/File, a web stream, or any async iterable of chunks (a Node `Readable` is one). */
export type UploadData =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/** A web ReadableStream over an async iterable of chunks (strings are UTF-8 encoded). */
export function iterableToStream(iterable: AsyncIterable<unknown>): ReadableStream<Uint8Array> {
  const iterator = iterable[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) return controller.close();
      if (typeof value === 'string') controller.enqueue(encoder.encode(value));
      else if (value instanceof Uint8Array) controller.enqueue(value);
      else if (value instanceof ArrayBuffer) controller.enqueue(new Uint8Array(value));
      else controller.error(new TypeError(`Cannot upload a chunk of type ${typeof value}`));
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/** The fetch body for `data`: kept as is when fetch takes it, streamed otherwise. */
export function toRequestBody(
  data: UploadData,
): string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> {
  if (
    typeof data === 'string' ||
    data instanceof Uint8Array ||
    data instanceof ArrayBuffer ||
    data instanceof ReadableStream ||
    (typeof Blob !== 'undefined' && data instanceof Blob)
  ) {
    return data;
  }
  if (isAsyncIterable(data)) return iterableToStream(data);
  throw new TypeError(
    'Upload data must be a string, Uint8Array, ArrayBuffer, Blob, ReadableStream or async iterable',
  );
}
