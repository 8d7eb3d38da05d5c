import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type BlobStore, createBlobStore } from '../blobs/index.js';
import type { Config } from '../config.js';
import { apiError, toApiError } from '../errors.js';
import { newId } from '../ids.js';
import { planFor } from '../plans.js';
import { isoNow } from '../store/db.js';
import { type Page, type PageRequest, paginate } from '../store/pagination.js';
import type { SnapshotRow } from '../store/schema.js';
import { type Role, requireRole } from './access.js';
import type { SandboxService } from './sandboxes/service.js';
import { requireState } from './sandboxes/states.js';
import { UrlSigner } from './signed-urls.js';
import { type CreateSnapshotInput, snapshotBlobKey } from './snapshot-view.js';

/** What the snapshot service is built from. */
export interface SnapshotServiceDeps {
  config: Config;
  sandboxes: SandboxService;
  blobs: BlobStore;
  signer: UrlSigner;
}

/**
 * Snapshots of sandboxes: taken by the runtime into `<dataDir>/tmp`, kept in the blob store,
 * listed and found with the same workspace and role checks as sandboxes (another workspace's
 * snapshot is 404 SNAPSHOT_NOT_FOUND). Snapshots outlive their sandbox.
 */
export class SnapshotService {
  readonly #deps: SnapshotServiceDeps;

  constructor(deps: SnapshotServiceDeps) {
    this.#deps = deps;
  }

  get sandboxes(): SandboxService {
    return this.#deps.sandboxes;
  }
  get blobs(): BlobStore {
    return this.#deps.blobs;
  }
  get signer(): UrlSigner {
    return this.#deps.signer;
  }
  get config(): Config {
    return this.#deps.config;
  }

  /** The live snapshot `id`, or null. No access check (the signed archive route checks a signature). */
  async find(id: string): Promise<SnapshotRow | null> {
    const row = await this.sandboxes.db
      .selectFrom('snapshots')
      .selectAll()
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return row ?? null;
  }

  /** The snapshot if the caller has at least `minRole` in its workspace; else 404 SNAPSHOT_NOT_FOUND. */
  async load(request: FastifyRequest, id: string, minRole: Role): Promise<SnapshotRow> {
    const row = await this.find(id);
    if (!row) throw apiError('SNAPSHOT_NOT_FOUND', { id });
    await requireRole(request, row.workspace_id, minRole, 'SNAPSHOT_NOT_FOUND');
    return row;
  }

  /** A loaded snapshot that is `ready`; 409 INVALID_STATE otherwise. */
  async loadReady(request: FastifyRequest, id: string, minRole: Role): Promise<SnapshotRow> {
    const row = await this.load(request, id, minRole);
    if (row.status !== 'ready' || !row.blob_key) {
      throw apiError('INVALID_STATE', { status: row.status }, `Snapshot ${id} is ${row.status}`);
    }
    return row;
  }

  /**
   * Snapshots of sandbox `sandboxId`, newest first. The sandbox may be deleted (its snapshots
   * outlive it); the caller needs `viewer` in its workspace (404 SANDBOX_NOT_FOUND otherwise).
   */
  async list(request: FastifyRequest, sandboxId: string, page: PageRequest): Promise<Page<SnapshotRow>> {
    const sandbox = await this.sandboxes.db
      .selectFrom('sandboxes')
      .select(['id', 'workspace_id'])
      .where('id', '=', sandboxId)
      .executeTakeFirst();
    if (!sandbox) throw apiError('SANDBOX_NOT_FOUND', { id: sandboxId });
    await requireRole(request, sandbox.workspace_id, 'viewer', 'SANDBOX_NOT_FOUND');
    const query = this.sandboxes.db
      .selectFrom('snapshots')
      .selectAll()
      .where('sandbox_id', '=', sandboxId)
      .where('workspace_id', '=', sandbox.workspace_id)
      .where('deleted_at', 'is', null);
    return paginate(query, page);
  }

  /**
   * Takes a snapshot of sandbox `sandboxId` (developer): checks the state, the runtime's
   * support for memory and the plan's `max_snapshots`, stores the row `creating`, has the
   * runtime write the archive, moves it into the blob store and marks the row `ready` — or
   * `error`, answering the failure. Runs under the sandbox's lock.
   */
  async create(request: FastifyRequest, sandboxId: string, input: CreateSnapshotInput): Promise<SnapshotRow> {
    const sandboxes = this.sandboxes;
    const sandbox = await sandboxes.load(request, sandboxId, 'developer');
    const workspace = await requireRole(request, sandbox.workspace_id, 'developer', 'SANDBOX_NOT_FOUND');
    const runtime = sandboxes.runtime;
    const includeMemory = input.include_memory === true;
    if (includeMemory && !runtime.features.memorySnapshots) {
      throw apiError(
        'VALIDATION_ERROR',
        {
          fields: [{ path: '/include_memory', message: `is not supported by the ${runtime.name} isolation` }],
          isolation: runtime.name,
        },
        `The ${runtime.name} isolation cannot snapshot process memory (include_memory)`,
      );
    }
    const plan = planFor(workspace.plan);
    return sandboxes.locks.run(sandbox.id, async () => {
      const current = await sandboxes.find(sandbox.id);
      if (!current) throw apiError('SANDBOX_NOT_FOUND', { id: sandbox.id });
      requireState(current.status, 'snapshot');
      const id = newId('snap');
      const row: SnapshotRow = {
        id,
        workspace_id: current.workspace_id,
        sandbox_id: current.id,
        name: input.name ?? id,
        status: 'creating',
        blob_key: snapshotBlobKey(id),
        size_bytes: null,
        sha256: null,
        includes_memory: includeMemory ? 1 : 0,
        template: current.template,
        error: null,
        created_by: request.auth?.userId ?? 'system',
        created_at: isoNow(),
        deleted_at: null,
      };
      await this.#insertWithinCap(row, plan);
      sandboxes.touch(current.id);
      try {
        const ready = await this.#capture(row, includeMemory);
        await sandboxes.record(request, current, 'sandbox.snapshot', {
          snapshot_id: id,
          include_memory: includeMemory,
          size_bytes: Number(ready.size_bytes),
        });
        return ready;
      } catch (err) {
        // What the caller is told, not the raw failure (an internal one may name host paths).
        await this.#update(id, { status: 'error', error: toApiError(err).message.slice(0, 2000) });
        await sandboxes.record(request, current, 'sandbox.snapshot', { snapshot_id: id, status: 'error' });
        throw err;
      }
    });
  }

  /**
   * Deletes a snapshot (developer): the row is marked deleted first, then the blob removed.
   * One still being taken is 409 INVALID_STATE (its archive is about to land).
   */
  async remove(request: FastifyRequest, id: string): Promise<void> {
    const row = await this.load(request, id, 'developer');
    if (row.status === 'creating') {
      throw apiError('INVALID_STATE', { status: row.status }, `Snapshot ${id} is still being taken`);
    }
    await this.sandboxes.locks.run(`snapshot:${id}`, async () => {
      await this.#update(id, { deleted_at: isoNow() });
      // A crash here leaves an unreferenced blob, never a row whose blob is gone.
      if (row.blob_key) await this.blobs.delete(row.blob_key);
    });
    await this.sandboxes.record(
      request,
      { id: row.sandbox_id, workspace_id: row.workspace_id },
      'snapshot.delete',
      {
        snapshot_id: id,
      },
    );
  }

  /**
   * At start-up: snapshots left `creating` by a previous process are marked `error` (their
   * runtime call died with it) and its snapshot temp files removed.
   */
  async settleInterrupted(): Promise<void> {
    await this.sandboxes.db
      .updateTable('snapshots')
      .set({ status: 'error', error: 'interrupted by a server restart' })
      .where('status', '=', 'creating')
      .execute();
    const dir = join(this.config.dataDir, 'tmp');
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (/^(snapshot|restore)-/.test(name)) await rm(join(dir, name), { force: true });
    }
  }

  /** A path under `<dataDir>/tmp` for a transient file (same disk as the blobs: moves are renames). */
  async tempPath(prefix: string): Promise<string> {
    const dir = join(this.config.dataDir, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${prefix}-${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async #insertWithinCap(row: SnapshotRow, plan: ReturnType<typeof planFor>): Promise<void> {
    await this.sandboxes.locks.run(`snapshots:${row.workspace_id}`, async () => {
      const count = await this.sandboxes.db
        .selectFrom('snapshots')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('workspace_id', '=', row.workspace_id)
        .where('status', 'in', ['creating', 'ready'])
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(count?.n ?? 0) >= plan.maxSnapshots) {
        throw apiError(
          'PLAN_LIMIT',
          { limit: 'max_snapshots', max: plan.maxSnapshots, plan: plan.id },
          `Your plan (${plan.name}) allows ${plan.maxSnapshots} snapshots per workspace`,
        );
      }
      await this.sandboxes.db.insertInto('snapshots').values(row).execute();
    });
  }

  /** The runtime writes the archive to a temp file, which then moves into the blob store. */
  async #capture(row: SnapshotRow, includeMemory: boolean): Promise<SnapshotRow> {
    const tmp = await this.tempPath('snapshot');
    try {
      const info = await this.sandboxes.runtime.snapshot(row.sandbox_id, tmp, { includeMemory });
      const stored = await this.blobs.putFile(row.blob_key!, info.path, info.sha256);
      return await this.#update(row.id, {
        status: 'ready',
        size_bytes: stored.size,
        sha256: stored.sha256,
        includes_memory: info.includesMemory ? 1 : 0,
      });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async #update(id: string, patch: Partial<Omit<SnapshotRow, 'id'>>): Promise<SnapshotRow> {
    const db = this.sandboxes.db;
    await db.updateTable('snapshots').set(patch).where('id', '=', id).execute();
    return db.selectFrom('snapshots').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }
}

// Keyed by the app's sandbox service, which every encapsulated context shares.
const services = new WeakMap<SandboxService, SnapshotService>();

/**
 * The app's snapshot service (made on first use): the blob store under the data directory
 * and a URL signer keyed from the JWT secret.
 */
export function snapshotsOf(app: FastifyInstance): SnapshotService {
  let service = services.get(app.sandboxes);
  if (!service) {
    service = new SnapshotService({
      config: app.config,
      sandboxes: app.sandboxes,
      blobs: createBlobStore(app.config),
      signer: UrlSigner.fromSecret(app.config.jwtSecret),
    });
    services.set(app.sandboxes, service);
  }
  return service;
}
