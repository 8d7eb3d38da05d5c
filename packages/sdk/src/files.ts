import { toRequestBody, type UploadData } from './body.js';
import type { Transport } from './http.js';
import type { FileInfo, RequestOptions, WrittenFile } from './types.js';

/** Options of `files.write`. */
export interface WriteOptions extends RequestOptions {
  /** Permission bits in octal, e.g. `'0755'` (default: the old file's, or 0644). */
  mode?: string;
}

/** A byte range to read: `{start, end}` (end inclusive), `{start}` to the end, or `{suffix: n}` for the last n bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

/** Options of `files.readStream`. */
export interface ReadOptions extends RequestOptions {
  range?: ByteRange;
}

function rangeHeader(range: ByteRange): string {
  return 'suffix' in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end ?? ''}`;
}

/**
 * The files of one sandbox (it must be running). Paths are absolute, or relative to the
 * sandbox user's home. Reads and writes stream: nothing is held whole unless you ask for bytes.
 */
export class SandboxFiles {
  constructor(
    private readonly transport: Transport,
    private readonly sandboxId: string,
  ) {}

  private path(suffix: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/files${suffix}`;
  }

  /**
   * Writes a file (parents are created; an existing file is replaced atomically). `data` may be
   * text, bytes, a Blob, a web ReadableStream or a Node Readable (streamed, not buffered).
   */
  async write(path: string, data: UploadData, options: WriteOptions = {}): Promise<WrittenFile> {
    return this.transport.json<WrittenFile>({
      method: 'PUT',
      path: this.path('/content'),
      query: { path, mode: options.mode },
      body: toRequestBody(data),
      headers: { 'content-type': 'application/octet-stream' },
      signal: options.signal,
    });
  }

  /** The file's content as a web ReadableStream (a byte range with `range`). */
  async readStream(path: string, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.transport.send({
      method: 'GET',
      path: this.path('/content'),
      query: { path },
      headers: options.range ? { range: rangeHeader(options.range) } : {},
      signal: options.signal,
    });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** The file's bytes. */
  async read(path: string, options: ReadOptions = {}): Promise<Uint8Array> {
    const stream = await this.readStream(path, options);
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** The file's content as UTF-8 text. */
  async readText(path: string, options: ReadOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, options));
  }

  /** True when `path` exists (a file, directory or link). */
  async exists(path: string, options: RequestOptions = {}): Promise<boolean> {
    try {
      const res = await this.transport.send({
        method: 'HEAD',
        path: this.path('/content'),
        query: { path },
        signal: options.signal,
      });
      await res.body?.cancel();
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FILE_NOT_FOUND' || code === 'HTTP_404') return false;
      // A directory is 400 on the content route: it exists.
      if (code === 'BAD_REQUEST' || code === 'HTTP_400') return true;
      throw err;
    }
  }

  /** The entries of a directory (default: the home directory), sorted by name. */
  async list(path?: string, options: RequestOptions = {}): Promise<FileInfo[]> {
    const answer = await this.transport.json<{ data: FileInfo[] }>({
      method: 'GET',
      path: this.path(''),
      query: { path },
      signal: options.signal,
    });
    return answer.data;
  }

  /** Removes a file, or a directory (`recursive: true` for a non-empty one). */
  async remove(path: string, options: RequestOptions & { recursive?: boolean } = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: this.path(''),
      query: { path, recursive: options.recursive },
      signal: options.signal,
    });
  }

  /** Creates a directory with its parents (an existing one is fine). */
  async mkdir(path: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'POST',
      path: this.path('/mkdir'),
      json: { path },
      signal: options.signal,
    });
  }

  /** Moves or renames a file or directory. */
  async move(from: string, to: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'POST',
      path: this.path('/move'),
      json: { from, to },
      signal: options.signal,
    });
  }

  /** A directory tree as a gzip-compressed tar, streamed. */
  async downloadArchive(path: string, options: RequestOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.transport.send({
      method: 'GET',
      path: this.path('/archive'),
      query: { path },
      signal: options.signal,
    });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** Unpacks a tar (plain or gzip) under directory `path` (created if missing). */
  async uploadArchive(path: string, data: UploadData, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'PUT',
      path: this.path('/archive'),
      query: { path },
      body: toRequestBody(data),
      headers: { 'content-type': 'application/octet-stream' },
      signal: options.signal,
    });
  }
}
