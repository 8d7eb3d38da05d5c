import type { SandboxInfo } from '@corral/runtime';
import { isoNow } from '../../store/db.js';
import type { SandboxRow, SandboxUpdate } from '../../store/schema.js';
import type { SandboxService } from './service.js';
import { type SandboxStatus, TRANSITIONAL_STATUSES } from './states.js';

/** What a reconciliation pass found and fixed. */
export interface ReconcileReport {
  /** Runtime sandboxes with no live row (unknown id, or a deleted row), destroyed. */
  orphansDestroyed: number;
  /** Live rows whose sandbox the runtime does not have: `starting` ones deleted, others `error`. */
  ghostsSettled: number;
  /** Rows whose status was brought in line with the runtime (transitional statuses included). */
  statusesFixed: number;
  /** Fixes that failed (logged); the next pass retries them. */
  failures: number;
  durationMs: number;
}

/** Options of a pass. */
export interface ReconcileOptions {
  /**
   * `startup` (default): nothing else is running, every discrepancy is settled. `periodic`: the
   * server is serving, so a row in `starting`/`stopping` younger than `transitionalGraceMs` is
   * left alone — a create may be between its insert and its runtime call.
   */
  mode?: 'startup' | 'periodic';
  /** Default ten minutes. */
  transitionalGraceMs?: number;
}

/** The error stored on a sandbox the runtime lost (host wiped, state removed by hand …). */
export const LOST_BY_RUNTIME = 'lost by the runtime';

/** Runtime calls in flight at once during a pass. */
const CONCURRENCY = 8;
const DEFAULT_GRACE_MS = 10 * 60_000;

/**
 * Brings the store and the runtime into agreement after a start or a crash; the runtime is the
 * truth about what exists and in which state, the store about what should exist:
 * - a runtime sandbox with no live row (unknown, or its row deleted before a crash) is destroyed;
 * - a live row the runtime does not have: `starting` (the create died before the runtime made
 *   it; the caller never got it) is marked deleted; any other status (but `error`) becomes
 *   `error` "lost by the runtime" — a user's sandbox record is never silently removed;
 * - a row whose status differs from the runtime's state (`starting`/`stopping` included) takes
 *   the runtime's state.
 * Each fix runs under the sandbox's lock after re-reading row and runtime, so a periodic pass
 * never undoes a lifecycle action that ran in between. Then the active gauge is refreshed.
 */
export async function reconcileSandboxes(
  service: SandboxService,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const started = Date.now();
  const report: ReconcileReport = {
    orphansDestroyed: 0,
    ghostsSettled: 0,
    statusesFixed: 0,
    failures: 0,
    durationMs: 0,
  };
  if (!service.hasRuntime) return report;
  const pass = new Pass(service, options, report);
  // The runtime first: a sandbox it lists was created after its row was inserted, so the rows
  // read next include it (or show it deleted).
  const listed = await service.runtime.list();
  const rows = await service.db.selectFrom('sandboxes').selectAll().where('deleted_at', 'is', null).execute();
  const live = new Set(rows.map((row) => row.id));
  const inRuntime = new Map(listed.map((info) => [info.id, info]));

  await mapLimit(
    listed.filter((info) => !live.has(info.id)),
    CONCURRENCY,
    (info) => pass.orphan(info.id),
  );
  await mapLimit(rows, CONCURRENCY, (row) => pass.row(row, inRuntime.get(row.id) ?? null));
  await service.refreshActiveGauge();
  report.durationMs = Date.now() - started;
  return report;
}

/** One pass's fixes, each under the sandbox's lock, counted into the report. */
class Pass {
  constructor(
    private readonly service: SandboxService,
    private readonly options: ReconcileOptions,
    private readonly report: ReconcileReport,
  ) {}

  /** A runtime sandbox without a live row: destroy it (if still so under the lock). */
  orphan(id: string): Promise<void> {
    return this.guard(id, async () => {
      if (await this.service.find(id)) return;
      await this.service.runtime.destroy(id);
      this.report.orphansDestroyed++;
      const row = await this.service.db
        .selectFrom('sandboxes')
        .select(['id', 'workspace_id', 'status'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) {
        this.service.log.warn(
          { sandbox_id: id },
          'reconcile: destroyed a runtime sandbox the store never had',
        );
        return;
      }
      this.service.metrics.sandboxDeleteTotal.inc({ reason: 'reconcile' });
      await this.service.record('system', row, 'sandbox.reconcile_destroy', { reason: 'row deleted' });
    });
  }

  /** A live row: settle it against the runtime's sandbox (re-read under the lock). */
  row(snapshot: SandboxRow, seen: SandboxInfo | null): Promise<void> {
    // Most rows agree: no lock, no second runtime call.
    if (seen && seen.state === snapshot.status) return Promise.resolve();
    if (!seen && snapshot.status === 'error') return Promise.resolve();
    return this.guard(snapshot.id, async () => {
      const row = await this.service.find(snapshot.id);
      if (!row || this.tooYoung(row)) return;
      const info = await this.service.runtime.get(row.id);
      if (!info) await this.ghost(row);
      else if (info.state !== row.status) await this.adopt(row, info);
    });
  }

  /** The runtime does not have this row's sandbox. */
  private async ghost(row: SandboxRow): Promise<void> {
    if (row.status === 'error') return;
    const service = this.service;
    if (row.status === 'starting' && !row.started_at) {
      // Interrupted before the runtime made it: the caller never got it, nothing to keep.
      const now = isoNow();
      await service.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('sandboxes')
          .set({ status: 'deleted', deleted_at: now, updated_at: now })
          .where('id', '=', row.id)
          .execute();
        await trx.deleteFrom('sandbox_env').where('sandbox_id', '=', row.id).execute();
      });
      service.forgetEnv(row.id);
      await service.record('system', row, 'sandbox.create_interrupted', { previous_status: row.status });
    } else {
      await service.setStatus(row.id, 'error', { error: LOST_BY_RUNTIME });
      await service.record('system', row, 'sandbox.lost', { previous_status: row.status });
    }
    this.report.ghostsSettled++;
  }

  /** The runtime's state wins over the row's status. */
  private async adopt(row: SandboxRow, info: SandboxInfo): Promise<void> {
    const patch: SandboxUpdate = { error: info.state === 'error' ? (info.error ?? 'runtime error') : null };
    if (info.state === 'running' && (row.status === 'starting' || !row.started_at)) {
      const now = isoNow();
      Object.assign(patch, { started_at: now, last_activity_at: now });
    }
    await this.service.setStatus(row.id, info.state as SandboxStatus, patch);
    await this.service.record('system', row, 'sandbox.reconcile_status', {
      from: row.status,
      status: info.state,
    });
    this.report.statusesFixed++;
  }

  /** In a periodic pass, a transitional row may belong to a call still in flight. */
  private tooYoung(row: SandboxRow): boolean {
    if (this.options.mode !== 'periodic') return false;
    if (!TRANSITIONAL_STATUSES.includes(row.status as SandboxStatus)) return false;
    const grace = this.options.transitionalGraceMs ?? DEFAULT_GRACE_MS;
    return Date.now() - Date.parse(row.updated_at) < grace;
  }

  /** Runs one fix under the sandbox's lock; a failure is logged and counted, never thrown. */
  private guard(id: string, fix: () => Promise<void>): Promise<void> {
    return this.service.locks.run(id, fix).catch((err: unknown) => {
      this.report.failures++;
      this.service.log.warn({ err, sandbox_id: id }, 'reconcile: could not settle a sandbox');
    });
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
