import { isRuntimeError, type SandboxInfo } from '@corral/runtime';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { apiError } from '../../errors.js';
import { isoNow } from '../../store/db.js';
import type { SandboxRow, SandboxUpdate } from '../../store/schema.js';
import { withDesktop } from './desktop.js';
import { type Cause, runtimeResources, type SandboxService } from './service.js';
import {
  BudgetInput,
  checkCap,
  MAX_TIMEOUT_SECONDS,
  Metadata,
  NetworkInput,
  normalizeBudget,
  normalizeNetwork,
  normalizeResources,
  ResourcesInput,
  SandboxName,
} from './spec.js';
import { ACTIVE_STATUSES, requireState, type SandboxStatus } from './states.js';
import { parseJson, type ResourcesView } from './view.js';

/** The lifecycle actions of `POST /v1/sandboxes/{id}/{action}`. */
export const LIFECYCLE_ACTIONS = ['start', 'stop', 'pause', 'resume', 'hibernate'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/**
 * The status written before the runtime call, where the action takes long enough to be seen
 * (and to be settled by reconciliation after a crash): booting is `starting`, freeing the
 * processes (stop, and hibernate, which is a stop that keeps memory where it can) is
 * `stopping`. Pause and a thaw from `paused` are quick and have none.
 */
function transitionalStatus(action: LifecycleAction, from: string): SandboxStatus | null {
  if (action === 'start') return 'starting';
  if (action === 'resume' && from === 'hibernated') return 'starting';
  if (action === 'stop' || action === 'hibernate') return 'stopping';
  return null;
}

/** True when the action makes a sandbox active that was not (counts toward the plan's cap). */
function activates(from: string): boolean {
  return !ACTIVE_STATUSES.includes(from as SandboxStatus);
}

/** Calls the runtime for `action` on sandbox `id`. */
function callRuntime(service: SandboxService, action: LifecycleAction, id: string): Promise<SandboxInfo> {
  const runtime = service.runtime;
  switch (action) {
    case 'start':
      return runtime.start(id);
    case 'stop':
      return runtime.stop(id);
    case 'pause':
      return runtime.pause(id);
    case 'resume':
      return runtime.resume(id);
    case 'hibernate':
      return runtime.hibernate(id);
  }
}

/**
 * Runs one lifecycle action on sandbox `id` for a request: developer role, one action per
 * sandbox at a time, 409 INVALID_STATE from the wrong status, 403 PLAN_LIMIT when a start
 * (or a resume from `hibernated`) would exceed the plan's concurrent sandboxes. The
 * transitional status is stored before the runtime call; afterwards the status the runtime
 * reports. A booting action stamps `started_at` (and `last_activity_at`, so a fresh start is
 * not idle-paused at once). A runtime failure leaves the sandbox `error` (with its message)
 * and answers the runtime's error.
 */
export async function runLifecycleAction(
  service: SandboxService,
  request: FastifyRequest,
  id: string,
  action: LifecycleAction,
): Promise<SandboxRow> {
  const loaded = await service.load(request, id, 'developer');
  void service.runtime; // 503 CAPACITY_EXHAUSTED before any change when there is no runtime
  return service.locks.run(id, async () => {
    const row = await reread(service, loaded);
    requireState(row.status, action);
    const from = row.status;
    const transitional = transitionalStatus(action, from);
    const boots = transitional === 'starting';
    if (activates(from)) {
      const plan = await service.planOf(row.workspace_id);
      await service.withActiveSlot(row.workspace_id, plan, () =>
        service.setStatus(id, transitional ?? 'running', { error: null }),
      );
    } else if (transitional) {
      await service.setStatus(id, transitional);
    }
    let info: SandboxInfo;
    try {
      info = await callRuntime(service, action, id);
    } catch (err) {
      await markFailed(service, request, row, action, from, err);
      throw err;
    }
    const now = isoNow();
    const patch: SandboxUpdate = { error: info.state === 'error' ? (info.error ?? 'unknown error') : null };
    if (boots) Object.assign(patch, { started_at: now, last_activity_at: now });
    if (action === 'resume') patch.last_activity_at = now;
    const updated = await service.setStatus(id, info.state, patch);
    await service.record(request, row, `sandbox.${action}`, { from, status: updated.status });
    // A boot starts everything afresh: the desktop of a gui sandbox too.
    return boots ? withDesktop(service, updated, request) : updated;
  });
}

/**
 * The row again, read under the sandbox's lock: an action that finished meanwhile may have
 * changed its status, and a destroy may have deleted it (then 404, never a runtime call).
 */
async function reread(service: SandboxService, loaded: SandboxRow): Promise<SandboxRow> {
  const row = await service.find(loaded.id);
  if (!row) throw apiError('SANDBOX_NOT_FOUND', { id: loaded.id });
  return row;
}

/** Stores `error` with a runtime failure's message and records the failed action. */
export async function markFailed(
  service: SandboxService,
  cause: Cause,
  row: SandboxRow,
  action: string,
  from: string,
  err: unknown,
): Promise<void> {
  const message = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
  await service.setStatus(row.id, 'error', { error: message });
  await service.record(cause, row, `sandbox.${action}`, { from, status: 'error', error: message });
}

/**
 * Extends a sandbox's expiry: `expires_at = now + seconds` (default the sandbox's
 * `timeout_seconds`), never further than the plan's longest timeout from now.
 */
export async function keepalive(
  service: SandboxService,
  request: FastifyRequest,
  id: string,
  seconds: number | undefined,
): Promise<SandboxRow> {
  const loaded = await service.load(request, id, 'developer');
  return service.locks.run(id, async () => {
    const row = await reread(service, loaded);
    requireState(row.status, 'keepalive');
    const plan = await service.planOf(row.workspace_id);
    const extendSeconds = Math.min(seconds ?? row.timeout_seconds, plan.maxTimeoutSeconds);
    const expiresAt = new Date(Date.now() + extendSeconds * 1000).toISOString();
    const updated = await service.update(id, { expires_at: expiresAt });
    await service.record(request, row, 'sandbox.keepalive', {
      seconds: extendSeconds,
      expires_at: expiresAt,
    });
    return updated;
  });
}

/** `PATCH /v1/sandboxes/{id}` body: every field optional, at least one; `null` clears. */
export const UpdateSandboxBody = Type.Object(
  {
    name: Type.Optional(SandboxName),
    timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS })),
    idle_timeout_seconds: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS }), Type.Null()]),
    ),
    resources: Type.Optional(ResourcesInput),
    metadata: Type.Optional(Metadata),
    budget_usd: Type.Optional(Type.Union([BudgetInput, Type.Null()])),
    network: Type.Optional(NetworkInput),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateSandboxInput = Static<typeof UpdateSandboxBody>;

/** Statuses in which the runtime holds the sandbox and keeps a new network policy or resources. */
const RUNTIME_HELD_STATUSES: readonly string[] = ['running', 'paused', 'stopped', 'hibernated'];

/**
 * Hands new resources to the runtime for a sandbox it holds; one in `error` may or may not be
 * there (a failed create is gone, a failed start is not), so only then is "not found" fine.
 */
async function applyResources(service: SandboxService, row: SandboxRow, resources: ResourcesView) {
  const runtime = service.runtime;
  if (RUNTIME_HELD_STATUSES.includes(row.status)) {
    await runtime.setResources(row.id, runtimeResources(resources));
  } else if (row.status === 'error') {
    await runtime.setResources(row.id, runtimeResources(resources)).catch((err: unknown) => {
      if (!isRuntimeError(err, 'SANDBOX_NOT_FOUND')) throw err;
    });
  }
}

/** 400 VALIDATION_ERROR when `next` asks for another disk size: the disk is fixed at create. */
function requireSameDisk(current: ResourcesView, next: ResourcesView): void {
  if (next.disk_mb === current.disk_mb) return;
  throw apiError(
    'VALIDATION_ERROR',
    {
      fields: [
        {
          path: '/resources/disk_mb',
          message: `the disk size is fixed at create (${current.disk_mb} MB); it cannot change`,
        },
      ],
    },
    `The disk size is fixed at create (${current.disk_mb} MB) and cannot be changed`,
  );
}

/**
 * Updates a sandbox (developer role; not while `starting`/`stopping`). Plan caps apply to
 * `timeout_seconds` and `resources` (403 PLAN_LIMIT).
 * - `timeout_seconds`: stored, and the sandbox now expires that long from now (the new
 *   timeout counts from the update, not from creation).
 * - `resources`: merged over the current ones (plan caps: 403 PLAN_LIMIT) and handed to the
 *   runtime (`setResources`) whenever it holds the sandbox (`error` too, if it is there):
 *   cpu and memory (and the pids cap derived from memory) are enforced at once when running
 *   or paused and kept for every later boot. The row is stored only once the runtime accepted
 *   them (a refusal, e.g. memory below what the sandbox uses now on cgroup v1, answers its
 *   error and stores nothing). `disk_mb` is fixed at create: another value is 400 VALIDATION_ERROR.
 * - `network`: stored, and handed to the runtime (`setNetwork`) whenever it holds the
 *   sandbox — enforced at once when running or paused, kept for the next boot otherwise.
 * - `metadata` replaces the whole map; `idle_timeout_seconds: null` and `budget_usd: null` clear.
 * Records `sandbox.update` with the names of the fields changed.
 */
export async function updateSandbox(
  service: SandboxService,
  request: FastifyRequest,
  id: string,
  input: UpdateSandboxInput,
): Promise<SandboxRow> {
  const loaded = await service.load(request, id, 'developer');
  return service.locks.run(id, async () => {
    const row = await reread(service, loaded);
    if (row.status === 'starting' || row.status === 'stopping') {
      throw apiError(
        'INVALID_STATE',
        { status: row.status, action: 'update' },
        `Cannot update a sandbox that is ${row.status}`,
      );
    }
    const plan = await service.planOf(row.workspace_id);
    const patch: SandboxUpdate = {};
    if (input.name !== undefined) patch.name = input.name;
    if (input.timeout_seconds !== undefined) {
      checkCap(plan, 'max_timeout_seconds', input.timeout_seconds, plan.maxTimeoutSeconds);
      patch.timeout_seconds = input.timeout_seconds;
      patch.expires_at = new Date(Date.now() + input.timeout_seconds * 1000).toISOString();
    }
    if (input.idle_timeout_seconds !== undefined) patch.idle_timeout_seconds = input.idle_timeout_seconds;
    let resources: ResourcesView | null = null;
    if (input.resources !== undefined) {
      const current = parseJson<ResourcesView>(row.resources, normalizeResources(undefined, plan));
      resources = normalizeResources({ ...current, ...input.resources }, plan);
      requireSameDisk(current, resources);
      patch.resources = JSON.stringify(resources);
    }
    if (input.metadata !== undefined) patch.metadata = JSON.stringify(input.metadata);
    if (input.budget_usd !== undefined) {
      patch.budget_usd = input.budget_usd === null ? null : normalizeBudget(input.budget_usd);
    }
    if (input.network !== undefined) {
      const network = normalizeNetwork(input.network);
      patch.network = JSON.stringify(network);
      if (RUNTIME_HELD_STATUSES.includes(row.status)) await service.runtime.setNetwork(id, network);
    }
    if (resources) await applyResources(service, row, resources);
    const updated = await service.update(id, patch);
    await service.record(request, row, 'sandbox.update', { fields: Object.keys(input).sort() });
    return updated;
  });
}
