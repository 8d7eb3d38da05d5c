import type { Runtime, TemplateStore } from '@corral/runtime';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { type Kysely, sql } from 'kysely';
import type { Config } from '../../config.js';
import { apiError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import { type Plan, planFor } from '../../plans.js';
import type { AuditLog } from '../../store/audit.js';
import { isoNow } from '../../store/db.js';
import { type Page, type PageRequest, paginate } from '../../store/pagination.js';
import type { Database, SandboxRow, SandboxUpdate } from '../../store/schema.js';
import { actorOf, type Role, requireAuth, requireRole } from '../access.js';
import { personalWorkspaceId } from '../keys.js';
import type { SecretBox } from '../secrets.js';
import { createSandbox, resolveTemplate } from './create.js';
import { type EncryptedEnvRow, SandboxEnvSecrets } from './env-secrets.js';
import { KeyedMutex } from './mutex.js';
import type { CreateSandboxInput } from './spec.js';
import { ACTIVE_STATUSES, type SandboxStatus } from './states.js';
import { type SandboxView, toSandboxView } from './view.js';

/** What the sandbox service is built from (all owned by the app). */
export interface SandboxServiceDeps {
  config: Config;
  db: Kysely<Database>;
  audit: AuditLog;
  metrics: Metrics;
  log: FastifyBaseLogger;
  /** Null in apps built without a runtime (some unit suites): sandbox calls then answer 503. */
  runtime: Runtime | null;
  templates: TemplateStore | null;
  secrets: SecretBox;
}

/** Who caused a change: a request's caller, or the system itself (jobs, reconciliation). */
export type Cause = FastifyRequest | 'system';

/** List filters of `GET /v1/sandboxes`. */
export interface SandboxListQuery extends PageRequest {
  workspace_id?: string | undefined;
  status?: string | undefined;
  template?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

/** How often (at most) one sandbox's `last_activity_at` is written. */
const ACTIVITY_WRITE_INTERVAL_MS = 1000;

/**
 * The sandbox domain: create, find (with the workspace and role check), list, destroy, status
 * updates, audit, activity and the decrypted env of each sandbox. Routes and jobs go through
 * it; the runtime is never called with a sandbox the store does not know.
 */
export class SandboxService {
  /** Per-sandbox (and per-workspace, for caps) one-at-a-time sections. */
  readonly locks = new KeyedMutex();
  readonly #deps: SandboxServiceDeps;
  readonly #lastActivityWrite = new Map<string, number>();
  readonly #env: SandboxEnvSecrets;

  constructor(deps: SandboxServiceDeps) {
    this.#deps = deps;
    this.#env = new SandboxEnvSecrets(deps.db, deps.secrets);
  }

  get config(): Config {
    return this.#deps.config;
  }
  get db(): Kysely<Database> {
    return this.#deps.db;
  }
  get log(): FastifyBaseLogger {
    return this.#deps.log;
  }
  get metrics(): Metrics {
    return this.#deps.metrics;
  }
  get secrets(): SecretBox {
    return this.#deps.secrets;
  }

  /** The runtime; 503 CAPACITY_EXHAUSTED when this server runs without one. */
  get runtime(): Runtime {
    if (!this.#deps.runtime)
      throw apiError('CAPACITY_EXHAUSTED', { reason: 'no sandbox runtime configured' });
    return this.#deps.runtime;
  }

  /** The template store; 503 when this server runs without a runtime. */
  get templates(): TemplateStore {
    if (!this.#deps.templates)
      throw apiError('CAPACITY_EXHAUSTED', { reason: 'no sandbox runtime configured' });
    return this.#deps.templates;
  }

  /** True when a runtime is configured. */
  get hasRuntime(): boolean {
    return this.#deps.runtime !== null;
  }

  /** The API object of a row. */
  view(row: SandboxRow): SandboxView {
    return toSandboxView(this.#deps.config, row);
  }

  /**
   * The workspace a create or list acts in: the explicit one, else the key's, else the user's
   * personal workspace — checked for at least `minRole` (404 WORKSPACE_NOT_FOUND otherwise).
   */
  async callerWorkspace(request: FastifyRequest, explicit: string | undefined, minRole: Role) {
    const auth = requireAuth(request);
    const id = explicit ?? auth.workspaceId ?? (await personalWorkspaceId(this.db, auth.userId));
    if (!id) throw apiError('WORKSPACE_NOT_FOUND');
    return requireRole(request, id, minRole);
  }

  /**
   * The sandbox `id` if the caller may act on it with at least `minRole`; a sandbox of another
   * workspace, a deleted one or an unknown id are all 404 SANDBOX_NOT_FOUND.
   */
  async load(request: FastifyRequest, id: string, minRole: Role): Promise<SandboxRow> {
    const row = await this.find(id);
    if (!row) throw apiError('SANDBOX_NOT_FOUND', { id });
    await requireRole(request, row.workspace_id, minRole, 'SANDBOX_NOT_FOUND');
    // Every sandbox API call (read, exec, files, lifecycle …) is activity for the idle timeout.
    this.touch(id);
    return row;
  }

  /**
   * Like `load`, but a deleted sandbox is found too (for its audit history); not activity.
   * Another workspace's or an unknown id is still 404 SANDBOX_NOT_FOUND.
   */
  async loadWithDeleted(request: FastifyRequest, id: string, minRole: Role): Promise<SandboxRow> {
    const row = await this.db.selectFrom('sandboxes').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw apiError('SANDBOX_NOT_FOUND', { id });
    await requireRole(request, row.workspace_id, minRole, 'SANDBOX_NOT_FOUND');
    return row;
  }

  /** The plan of workspace `workspaceId` (free when the workspace is gone). */
  async planOf(workspaceId: string): Promise<Plan> {
    const row = await this.db
      .selectFrom('workspaces')
      .select('plan')
      .where('id', '=', workspaceId)
      .executeTakeFirst();
    return planFor(row?.plan ?? 'free');
  }

  /**
   * Runs `fn` (which makes one more sandbox of the workspace active: an insert, or a status
   * write) only if the plan's concurrency cap allows one more — 403 PLAN_LIMIT
   * `{limit: 'max_concurrent_sandboxes'}` otherwise. Count and write are one step per workspace.
   */
  async withActiveSlot<T>(workspaceId: string, plan: Plan, fn: () => Promise<T>): Promise<T> {
    const result = await this.locks.run(`workspace:${workspaceId}`, async () => {
      const active = await this.db
        .selectFrom('sandboxes')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('workspace_id', '=', workspaceId)
        .where('status', 'in', ACTIVE_STATUSES as SandboxStatus[])
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(active?.n ?? 0) >= plan.maxConcurrentSandboxes) {
        throw apiError(
          'PLAN_LIMIT',
          { limit: 'max_concurrent_sandboxes', max: plan.maxConcurrentSandboxes, plan: plan.id },
          `Your plan (${plan.name}) allows ${plan.maxConcurrentSandboxes} sandboxes at a time`,
        );
      }
      return fn();
    });
    void this.refreshActiveGauge();
    return result;
  }

  /** The live (not deleted) row, or null. No access check: for jobs and reconciliation. */
  async find(id: string): Promise<SandboxRow | null> {
    const row = await this.db
      .selectFrom('sandboxes')
      .selectAll()
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return row ?? null;
  }

  /** Updates a row (stamping `updated_at`) and returns it as stored. */
  async update(id: string, patch: SandboxUpdate): Promise<SandboxRow> {
    await this.db
      .updateTable('sandboxes')
      .set({ ...patch, updated_at: isoNow() })
      .where('id', '=', id)
      .execute();
    const row = await this.db
      .selectFrom('sandboxes')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return row;
  }

  /** Sets the status (and any other fields) of a sandbox; keeps the active gauge current. */
  async setStatus(id: string, status: SandboxStatus, patch: SandboxUpdate = {}): Promise<SandboxRow> {
    const row = await this.update(id, { ...patch, status });
    void this.refreshActiveGauge();
    return row;
  }

  /** Re-reads the number of active sandboxes into `corral_sandboxes_active`. */
  async refreshActiveGauge(): Promise<void> {
    try {
      const row = await this.db
        .selectFrom('sandboxes')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('status', 'in', ACTIVE_STATUSES as SandboxStatus[])
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      this.metrics.sandboxesActive.set(Number(row?.n ?? 0));
    } catch (err) {
      this.log.warn({ err }, 'could not count active sandboxes');
    }
  }

  /** Records an audit event about sandbox `row` caused by `cause`. */
  async record(
    cause: Cause,
    row: Pick<SandboxRow, 'id' | 'workspace_id'>,
    action: string,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    if (cause === 'system') {
      await this.#deps.audit.record({
        workspaceId: row.workspace_id,
        actorType: 'system',
        action,
        targetType: 'sandbox',
        targetId: row.id,
        details,
      });
      return;
    }
    const actor = actorOf(cause);
    await this.#deps.audit.record({
      workspaceId: row.workspace_id,
      actorType: actor.actorType,
      actorId: actor.actorId,
      action,
      targetType: 'sandbox',
      targetId: row.id,
      ip: actor.ip,
      details: { ...actor.details, ...details },
    });
  }

  /**
   * Notes activity on a sandbox (API calls, exec, terminal, proxied traffic) for its idle
   * timeout. Written at most once a second per sandbox; never throws.
   */
  touch(id: string): void {
    const now = Date.now();
    const last = this.#lastActivityWrite.get(id) ?? 0;
    if (now - last < ACTIVITY_WRITE_INTERVAL_MS) return;
    this.#lastActivityWrite.set(id, now);
    this.db
      .updateTable('sandboxes')
      .set({ last_activity_at: new Date(now).toISOString() })
      .where('id', '=', id)
      .execute()
      .catch((err: unknown) => this.log.warn({ err, sandbox_id: id }, 'could not record activity'));
  }

  /** The sandbox's secret env, decrypted (cached in memory; `forgetEnv` after a change). */
  envFor(id: string): Promise<Record<string, string>> {
    return this.#env.get(id);
  }

  /** Drops the cached env of a sandbox (after PUT/DELETE env). */
  forgetEnv(id: string): void {
    this.#env.forget(id);
  }

  /** Rows for `sandbox_env`: each value encrypted, bound to its sandbox and name. */
  encryptEnv(id: string, vars: Record<string, string>): EncryptedEnvRow[] {
    return this.#env.encrypt(id, vars);
  }

  /**
   * Creates a sandbox (see `createSandbox`): plan caps, the row first as `starting`, then the
   * runtime, then the outcome.
   */
  create(request: FastifyRequest, input: CreateSandboxInput): Promise<SandboxRow> {
    return createSandbox(this, request, input);
  }

  /** A template name or custom template id/name of the workspace → the runtime's template (see `resolveTemplate`). */
  resolveTemplate(workspaceId: string, template: string): Promise<string> {
    return resolveTemplate(this, workspaceId, template);
  }

  /** The caller's sandboxes in one workspace, newest first, filtered. Deleted ones are not listed. */
  async list(request: FastifyRequest, query: SandboxListQuery): Promise<Page<SandboxRow>> {
    const workspace = await this.callerWorkspace(request, query.workspace_id, 'viewer');
    let q = this.db
      .selectFrom('sandboxes')
      .selectAll()
      .where('workspace_id', '=', workspace.id)
      .where('deleted_at', 'is', null);
    if (query.status) q = q.where('status', '=', query.status);
    if (query.template) q = q.where('template', '=', query.template);
    // The metadata filter is applied in SQL on the JSON text (exact key and value match), both
    // dialects: SQLite json_extract, PostgreSQL ->>.
    for (const [key, value] of Object.entries(query.metadata ?? {})) {
      q = q.where(
        this.#dialectIsPostgres()
          ? sql<boolean>`(metadata::jsonb ->> ${key}) = ${value}`
          : sql<boolean>`json_extract(metadata, ${`$."${key.replace(/"/g, '""')}"`}) = ${value}`,
      );
    }
    return paginate(q, query);
  }

  #dialectIsPostgres(): boolean {
    return this.#deps.config.database.driver === 'postgres';
  }

  /**
   * Destroys a sandbox: marks it deleted first (so a crash after this point leaves a runtime
   * orphan that reconciliation removes, never a ghost row), then destroys it in the runtime.
   */
  async destroy(
    cause: Cause,
    row: SandboxRow,
    reason: 'api' | 'expired' | 'reconcile' = 'api',
  ): Promise<void> {
    await this.locks.run(row.id, async () => {
      const current = await this.find(row.id);
      if (!current) return;
      await this.db
        .updateTable('sandboxes')
        .set({ status: 'deleted', deleted_at: isoNow(), updated_at: isoNow() })
        .where('id', '=', row.id)
        .execute();
      await this.db.deleteFrom('sandbox_env').where('sandbox_id', '=', row.id).execute();
      this.#env.drop(row.id);
      this.#lastActivityWrite.delete(row.id);
      this.metrics.sandboxDeleteTotal.inc({ reason });
      void this.refreshActiveGauge();
      await this.record(cause, row, reason === 'expired' ? 'sandbox.expire' : 'sandbox.delete', {
        previous_status: current.status,
      });
      if (this.#deps.runtime) {
        await this.#deps.runtime.destroy(row.id).catch((err: unknown) => {
          this.log.warn({ err, sandbox_id: row.id }, 'runtime destroy failed; reconciliation will retry');
        });
      }
    });
  }
}

/** The runtime's resources for API resources: pids scale with memory (the fork-bomb guard). */
export function runtimeResources(resources: { cpu: number; memory_mb: number; disk_mb: number }) {
  return {
    cpu: resources.cpu,
    memoryMb: resources.memory_mb,
    diskMb: resources.disk_mb,
    pids: Math.max(256, Math.min(4096, resources.memory_mb)),
  };
}
