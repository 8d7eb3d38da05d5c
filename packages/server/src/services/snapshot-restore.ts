import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { apiError } from '../errors.js';
import { isoNow } from '../store/db.js';
import type { SandboxRow, SnapshotRow } from '../store/schema.js';
import { requireScope } from './access.js';
import { withDesktop } from './sandboxes/desktop.js';
import type { CreateSandboxInput } from './sandboxes/spec.js';
import { requireState } from './sandboxes/states.js';
import { parseJson } from './sandboxes/view.js';
import type { RestoreSnapshotInput } from './snapshot-view.js';
import type { SnapshotService } from './snapshots.js';

/** What a restore answers: the sandbox as it is now, and whether it was made for the restore. */
export interface RestoreResult {
  sandbox: SandboxRow;
  created: boolean;
}

/**
 * Restores snapshot `id` (developer) into sandbox `input.sandbox_id` of the snapshot's
 * workspace (the caller also needs `sandbox:write`), or — without one — into a new sandbox
 * made from the snapshot's template with its source's resources and network (the caller also
 * needs `sandbox:create`; the new sandbox is destroyed again when the restore fails).
 */
export async function restoreSnapshot(
  service: SnapshotService,
  request: FastifyRequest,
  id: string,
  input: RestoreSnapshotInput,
): Promise<RestoreResult> {
  const snapshot = await service.loadReady(request, id, 'developer');
  const sandboxes = service.sandboxes;
  if (input.sandbox_id !== undefined) {
    requireScope(request, 'sandbox:write');
    const target = await sandboxes.load(request, input.sandbox_id, 'developer');
    if (target.workspace_id !== snapshot.workspace_id) {
      throw apiError(
        'BAD_REQUEST',
        { snapshot_workspace_id: snapshot.workspace_id, sandbox_workspace_id: target.workspace_id },
        'A snapshot restores only into a sandbox of its own workspace',
      );
    }
    return { sandbox: await restoreInto(service, request, snapshot, target.id), created: false };
  }

  requireScope(request, 'sandbox:create');
  const created = await sandboxes.create(request, await newSandboxInput(service, snapshot));
  try {
    return { sandbox: await restoreInto(service, request, snapshot, created.id), created: true };
  } catch (err) {
    await sandboxes.destroy(request, created).catch((destroyErr: unknown) => {
      sandboxes.log.warn(
        { err: destroyErr, sandbox_id: created.id },
        'could not remove the sandbox of a failed restore',
      );
    });
    throw err;
  }
}

/** The create body of a sandbox for `snapshot`: its template, and its source's resources, network and `gui`. */
async function newSandboxInput(service: SnapshotService, snapshot: SnapshotRow): Promise<CreateSandboxInput> {
  const source = await service.sandboxes.db
    .selectFrom('sandboxes')
    .select(['resources', 'network', 'gui'])
    .where('id', '=', snapshot.sandbox_id)
    .executeTakeFirst();
  const input: CreateSandboxInput = { workspace_id: snapshot.workspace_id, template: snapshot.template };
  if (source) {
    input.resources = parseJson<CreateSandboxInput['resources']>(source.resources, undefined);
    input.network = parseJson<CreateSandboxInput['network']>(source.network, undefined);
    input.gui = source.gui === 1;
  }
  return input;
}

/**
 * Replaces sandbox `sandboxId`'s filesystem (and memory, for a memory snapshot on an isolation
 * that keeps it) with the snapshot, under the sandbox's lock; the sandbox is `running` after.
 * On failure the stored status follows what the runtime reports.
 */
async function restoreInto(
  service: SnapshotService,
  request: FastifyRequest,
  snapshot: SnapshotRow,
  sandboxId: string,
): Promise<SandboxRow> {
  const sandboxes = service.sandboxes;
  return sandboxes.locks.run(sandboxId, async () => {
    const current = await sandboxes.find(sandboxId);
    if (!current) throw apiError('SANDBOX_NOT_FOUND', { id: sandboxId });
    requireState(current.status, 'restore');
    sandboxes.touch(sandboxId);
    try {
      // The snapshot's lock keeps a concurrent delete from removing the blob mid-restore.
      await sandboxes.locks.run(`snapshot:${snapshot.id}`, async () => {
        const live = await service.find(snapshot.id);
        if (!live?.blob_key) throw apiError('SNAPSHOT_NOT_FOUND', { id: snapshot.id });
        await withLocalFile(service, live.blob_key, (path) => sandboxes.runtime.restore(sandboxId, path));
      });
    } catch (err) {
      const info = await sandboxes.runtime.get(sandboxId).catch(() => null);
      await sandboxes.setStatus(sandboxId, info?.state ?? 'error');
      await sandboxes.record(request, current, 'sandbox.restore', {
        snapshot_id: snapshot.id,
        status: 'error',
      });
      throw err;
    }
    const row = await sandboxes.setStatus(sandboxId, 'running', { error: null, started_at: isoNow() });
    await sandboxes.record(request, current, 'sandbox.restore', {
      snapshot_id: snapshot.id,
      includes_memory: snapshot.includes_memory === 1,
    });
    // The restore booted the sandbox afresh: a gui sandbox's desktop starts again.
    return withDesktop(sandboxes, row, request);
  });
}

/**
 * Runs `fn` with a local file holding blob `key`: the blob store's own file where it keeps
 * one, else a temp copy removed afterwards.
 */
async function withLocalFile<T>(
  service: SnapshotService,
  key: string,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  if (service.blobs.path) return fn(await service.blobs.path(key));
  const tmp = await service.tempPath('restore');
  try {
    await pipeline(await service.blobs.get(key), createWriteStream(tmp, { mode: 0o600 }));
    return await fn(tmp);
  } finally {
    await rm(tmp, { force: true });
  }
}
