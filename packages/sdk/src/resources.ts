import { toRequestBody, type UploadData } from './body.js';
import { fetchPage, type Page } from './page.js';
import { Sandbox, type SandboxContext } from './sandbox.js';
import type { ListOptions } from './sandbox-parts.js';
import type {
  CreateSandboxParams,
  CreateTemplateParams,
  ListSandboxesQuery,
  RequestOptions,
  SandboxInfo,
  SnapshotDownload,
  SnapshotInfo,
  TemplateInfo,
} from './types.js';

/** Filters of `corral.sandboxes.list`. */
export interface ListSandboxesOptions extends ListOptions {
  status?: ListSandboxesQuery['status'];
  template?: string;
  workspaceId?: string;
  /** Only sandboxes whose metadata has every one of these key/value pairs. */
  metadata?: Record<string, string>;
}

/** `corral.sandboxes`: create, find and list sandboxes. */
export class Sandboxes {
  constructor(private readonly context: SandboxContext) {}

  /** A handle on a sandbox you already have the API object of (no request). */
  wrap(info: SandboxInfo): Sandbox {
    return new Sandbox(this.context, info);
  }

  /** Creates a sandbox and answers once it is running. Every field is optional (`template` defaults to `base`). */
  async create(params: CreateSandboxParams = {}, options: RequestOptions = {}): Promise<Sandbox> {
    const info = await this.context.transport.json<SandboxInfo>({
      method: 'POST',
      path: '/v1/sandboxes',
      json: params,
      signal: options.signal,
    });
    return this.wrap(info);
  }

  /** One sandbox by id (`SandboxNotFoundError` when it does not exist or is not yours). */
  async get(id: string, options: RequestOptions = {}): Promise<Sandbox> {
    const info = await this.context.transport.json<SandboxInfo>({
      method: 'GET',
      path: `/v1/sandboxes/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
    return this.wrap(info);
  }

  /** One page of sandboxes, newest first; `for await` over it walks every page. */
  async list(options: ListSandboxesOptions = {}): Promise<Page<Sandbox>> {
    const query: Record<string, string | number | undefined> = {
      limit: options.limit,
      status: options.status,
      template: options.template,
      workspace_id: options.workspaceId,
    };
    for (const [key, value] of Object.entries(options.metadata ?? {})) query[`metadata[${key}]`] = value;
    return fetchPage(
      (cursor) =>
        this.context.transport.json<{ data: SandboxInfo[]; next_cursor: string | null }>({
          method: 'GET',
          path: '/v1/sandboxes',
          query: { ...query, cursor },
          signal: options.signal,
        }),
      (info) => this.wrap(info),
      options.cursor,
    );
  }

  /** Every sandbox matching `options`, across pages: `for await (const box of corral.sandboxes.iterate())`. */
  async *iterate(options: ListSandboxesOptions = {}): AsyncGenerator<Sandbox> {
    yield* await this.list(options);
  }
}

/** `corral.snapshots`: snapshots by id (take them with `box.snapshots.create()`). */
export class Snapshots {
  constructor(private readonly context: SandboxContext) {}

  private path(id: string, suffix = ''): string {
    return `/v1/snapshots/${encodeURIComponent(id)}${suffix}`;
  }

  /** One snapshot. */
  async get(id: string, options: RequestOptions = {}): Promise<SnapshotInfo> {
    return this.context.transport.json<SnapshotInfo>({
      method: 'GET',
      path: this.path(id),
      signal: options.signal,
    });
  }

  /** Deletes a snapshot and its archive. */
  async remove(id: string, options: RequestOptions = {}): Promise<void> {
    await this.context.transport.empty({ method: 'DELETE', path: this.path(id), signal: options.signal });
  }

  /** Restores a snapshot into sandbox `sandboxId`, or into a new sandbox when none is given. */
  async restore(id: string, options: RequestOptions & { sandboxId?: string } = {}): Promise<Sandbox> {
    const info = await this.context.transport.json<SandboxInfo>({
      method: 'POST',
      path: this.path(id, '/restore'),
      json: options.sandboxId ? { sandbox_id: options.sandboxId } : {},
      signal: options.signal,
    });
    return new Sandbox(this.context, info);
  }

  /** A signed URL that downloads the archive without credentials until `expires_at`. */
  async downloadUrl(
    id: string,
    options: RequestOptions & { ttlSeconds?: number } = {},
  ): Promise<SnapshotDownload> {
    return this.context.transport.json<SnapshotDownload>({
      method: 'GET',
      path: this.path(id, '/download'),
      query: { ttl_seconds: options.ttlSeconds },
      signal: options.signal,
    });
  }

  /** The snapshot's archive (zstd or gzip tar), streamed through a fresh signed URL. */
  async download(id: string, options: RequestOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const { url } = await this.downloadUrl(id, options);
    const absolute = new URL(url, this.context.transport.baseUrl);
    const res = await this.context.transport.send({
      method: 'GET',
      path: absolute.pathname,
      query: Object.fromEntries(absolute.searchParams),
      signal: options.signal,
      auth: false,
    });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }
}

/** `corral.templates`: built-in and custom sandbox templates. */
export class Templates {
  constructor(private readonly context: SandboxContext) {}

  /** Built-in templates and the workspace's own (newest first); the page iterates them all. */
  async list(options: ListOptions & { workspaceId?: string } = {}): Promise<Page<TemplateInfo>> {
    return fetchPage(
      (cursor) =>
        this.context.transport.json<{ data: TemplateInfo[]; next_cursor: string | null }>({
          method: 'GET',
          path: '/v1/templates',
          query: { limit: options.limit, cursor, workspace_id: options.workspaceId },
          signal: options.signal,
        }),
      (t) => t,
      options.cursor,
    );
  }

  /** One template by id or name, with its build log. */
  async get(id: string, options: RequestOptions = {}): Promise<TemplateInfo> {
    return this.context.transport.json<TemplateInfo>({
      method: 'GET',
      path: `/v1/templates/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
  }

  /**
   * Starts building a template (answers at once with status `building`; poll `get` or use
   * `waitUntilReady`): from Debian packages (`{name, packages, run?}`), or from an OCI image
   * / `docker save` tarball (`{name, image}`).
   */
  async create(
    params: CreateTemplateParams | { name: string; image: UploadData; workspaceId?: string },
    options: RequestOptions = {},
  ): Promise<TemplateInfo> {
    if ('image' in params) {
      return this.context.transport.json<TemplateInfo>({
        method: 'POST',
        path: '/v1/templates',
        query: { name: params.name, workspace_id: params.workspaceId },
        body: toRequestBody(params.image),
        headers: { 'content-type': 'application/x-tar' },
        signal: options.signal,
      });
    }
    return this.context.transport.json<TemplateInfo>({
      method: 'POST',
      path: '/v1/templates',
      json: params,
      signal: options.signal,
    });
  }

  /** Polls a template until it is no longer `building` (every `intervalMs`, default 1 s). */
  async waitUntilReady(
    id: string,
    options: RequestOptions & { intervalMs?: number } = {},
  ): Promise<TemplateInfo> {
    for (;;) {
      const template = await this.get(id, options);
      if (template.status !== 'building') return template;
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 1000));
      options.signal?.throwIfAborted();
    }
  }

  /** Deletes a custom template (409 while a sandbox uses it). */
  async remove(id: string, options: RequestOptions = {}): Promise<void> {
    await this.context.transport.empty({
      method: 'DELETE',
      path: `/v1/templates/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
  }
}
