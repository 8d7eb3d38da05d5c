import type { Transport } from './http.js';
import { fetchPage, type Page } from './page.js';
import type {
  CreateSnapshotParams,
  ProcessInfo,
  ProcessSignal,
  RequestOptions,
  SnapshotInfo,
} from './types.js';

/** Options of paginated lists. */
export interface ListOptions extends RequestOptions {
  /** Items per page (default 50, max 500). */
  limit?: number;
  /** Start after this cursor (from a previous page). */
  cursor?: string;
}

/** The secret environment variables of a sandbox (values are write-only). */
export class SandboxEnv {
  constructor(
    private readonly transport: Transport,
    private readonly sandboxId: string,
  ) {}

  private path(suffix = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/env${suffix}`;
  }

  /** Adds or replaces variables (merged; stored encrypted); answers every name now set. */
  async set(vars: Record<string, string>, options: RequestOptions = {}): Promise<string[]> {
    const answer = await this.transport.json<{ names: string[] }>({
      method: 'PUT',
      path: this.path(),
      json: { vars },
      signal: options.signal,
    });
    return answer.names;
  }

  /** The names of the variables (never their values), sorted. */
  async list(options: RequestOptions = {}): Promise<string[]> {
    const answer = await this.transport.json<{ names: string[] }>({
      method: 'GET',
      path: this.path(),
      signal: options.signal,
    });
    return answer.names;
  }

  /** Removes one variable. */
  async remove(name: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: this.path(`/${encodeURIComponent(name)}`),
      signal: options.signal,
    });
  }
}

/** The snapshots of a sandbox (see also `corral.snapshots` for get/remove/restore/download). */
export class SandboxSnapshots {
  constructor(
    private readonly transport: Transport,
    private readonly sandboxId: string,
  ) {}

  private path(): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/snapshots`;
  }

  /** Takes a snapshot (filesystem; memory too with `include_memory` where supported). */
  async create(params: CreateSnapshotParams = {}, options: RequestOptions = {}): Promise<SnapshotInfo> {
    return this.transport.json<SnapshotInfo>({
      method: 'POST',
      path: this.path(),
      json: params,
      signal: options.signal,
    });
  }

  /** The sandbox's snapshots, newest first (the page iterates every one). */
  async list(options: ListOptions = {}): Promise<Page<SnapshotInfo>> {
    return fetchPage(
      (cursor) =>
        this.transport.json<{ data: SnapshotInfo[]; next_cursor: string | null }>({
          method: 'GET',
          path: this.path(),
          query: { limit: options.limit, cursor },
          signal: options.signal,
        }),
      (s) => s,
      options.cursor,
    );
  }
}

/** The processes started through the API (exec, terminals) that still run in a sandbox. */
export class SandboxProcesses {
  constructor(
    private readonly transport: Transport,
    private readonly sandboxId: string,
  ) {}

  private path(suffix = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/processes${suffix}`;
  }

  /** The running processes. */
  async list(options: RequestOptions = {}): Promise<ProcessInfo[]> {
    const answer = await this.transport.json<{ data: ProcessInfo[] }>({
      method: 'GET',
      path: this.path(),
      signal: options.signal,
    });
    return answer.data;
  }

  /** Sends `signal` (default SIGTERM) to process `pid` and its children. */
  async signal(pid: number, signal: ProcessSignal = 'SIGTERM', options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'POST',
      path: this.path(`/${pid}/signal`),
      json: { signal },
      signal: options.signal,
    });
  }
}
