/**
 * `@corral/sdk/node`: Node stream helpers (this entry imports `node:stream`; the main entry
 * never does). Uploads take a Node Readable directly; these cover the reading side, and this
 * entry's `Corral` brings a WebSocket (`ws`) for `box.terminal()` where Node has none (Node 20).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { WebSocket as NodeWebSocket } from 'ws';
import { Corral as BaseCorral, type CorralOptions } from './client.js';
import type { ReadOptions } from './files.js';
import type { Sandbox } from './sandbox.js';
import type { RequestOptions } from './types.js';

/** A Node Readable over a web ReadableStream (e.g. `box.files.readStream()`'s answer). */
export function toNodeReadable(stream: ReadableStream<Uint8Array>): Readable {
  return Readable.fromWeb(stream as unknown as NodeWebReadableStream<Uint8Array>);
}

/** A file of the sandbox as a Node Readable: `(await readFileStream(box, 'a.bin')).pipe(out)`. */
export async function readFileStream(
  box: Sandbox,
  path: string,
  options: ReadOptions = {},
): Promise<Readable> {
  return toNodeReadable(await box.files.readStream(path, options));
}

/** A directory tree of the sandbox as a Node Readable of tar.gz bytes. */
export async function downloadArchiveStream(
  box: Sandbox,
  path: string,
  options: RequestOptions = {},
): Promise<Readable> {
  return toNodeReadable(await box.files.downloadArchive(path, options));
}

export * from './index.js';
export {
  type Connectable,
  type ForwardPortOptions,
  forwardPort,
  type PortForwarder,
} from './mux/forward.js';

/** The Corral client for Node: as the main entry's, with `ws` as the WebSocket when Node has no global one. */
export class Corral extends BaseCorral {
  constructor(options: CorralOptions = {}) {
    const globalWebSocket = (globalThis as { WebSocket?: CorralOptions['WebSocket'] }).WebSocket;
    super({
      WebSocket: globalWebSocket ?? (NodeWebSocket as unknown as CorralOptions['WebSocket']),
      ...options,
    });
  }
}
