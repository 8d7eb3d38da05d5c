import { markFailed } from './lifecycle.js';
import type { SandboxService } from './service.js';
import { type SandboxStatus, TRANSITIONAL_STATUSES } from './states.js';

/** What one run of the sandbox jobs did. */
export interface SandboxJobsReport {
  /** Sandboxes destroyed because `expires_at` passed. */
  expired: number;
  /** Running sandboxes paused after `idle_timeout_seconds` without activity. */
  idlePaused: number;
}

/**
 * Destroys every live sandbox whose `expires_at` is at or before `nowMs` (recorded as
 * `sandbox.expire` by `system`). Sandboxes in the middle of a runtime call
 * (`starting`/`stopping`) are left to the next run, or to reconciliation after a crash.
 */
export async function expireSandboxes(service: SandboxService, nowMs: number): Promise<number> {
  const rows = await service.db
    .selectFrom('sandboxes')
    .selectAll()
    .where('deleted_at', 'is', null)
    .where('status', 'not in', TRANSITIONAL_STATUSES as SandboxStatus[])
    .where('expires_at', '<=', new Date(nowMs).toISOString())
    .execute();
  let expired = 0;
  for (const row of rows) {
    try {
      await service.destroy('system', row, 'expired');
      expired++;
    } catch (err) {
      service.log.error({ err, sandbox_id: row.id }, 'expiring a sandbox failed');
    }
  }
  return expired;
}

/**
 * Pauses every running sandbox with an idle timeout whose last activity is at least that
 * long before `nowMs` and that runs no API-started command (`sandbox.idle_pause` by `system`).
 */
export async function pauseIdleSandboxes(service: SandboxService, nowMs: number): Promise<number> {
  const rows = await service.db
    .selectFrom('sandboxes')
    .select(['id', 'idle_timeout_seconds', 'last_activity_at'])
    .where('deleted_at', 'is', null)
    .where('status', '=', 'running')
    .where('idle_timeout_seconds', 'is not', null)
    .execute();
  let paused = 0;
  for (const row of rows) {
    if (!isIdle(row, nowMs)) continue;
    try {
      if (await pauseIfIdle(service, row.id, nowMs)) paused++;
    } catch (err) {
      service.log.error({ err, sandbox_id: row.id }, 'idle-pausing a sandbox failed');
    }
  }
  return paused;
}

/** True when a sandbox's idle timeout has run out at `nowMs`. */
function isIdle(
  row: { idle_timeout_seconds: number | null; last_activity_at: string },
  nowMs: number,
): boolean {
  if (row.idle_timeout_seconds === null) return false;
  return Date.parse(row.last_activity_at) + row.idle_timeout_seconds * 1000 <= nowMs;
}

/**
 * Pauses sandbox `id` if it is still running and idle, re-checked under its lock so that
 * activity or an action that landed meanwhile wins. True when it paused it.
 */
export async function pauseIfIdle(service: SandboxService, id: string, nowMs: number): Promise<boolean> {
  return service.locks.run(id, async () => {
    const row = await service.find(id);
    if (row?.status !== 'running' || !isIdle(row, nowMs)) return false;
    // A command started through the API and still running is work in progress, not idleness
    // (a long build must not be frozen half-way). Terminals are not counted here: an open,
    // silent terminal is idle; their traffic is activity instead.
    const processes = await service.runtime.processes(id).catch(() => []);
    if (processes.some((proc) => !proc.tty)) {
      service.touch(id);
      return false;
    }
    try {
      const info = await service.runtime.pause(id);
      await service.setStatus(id, info.state);
    } catch (err) {
      await markFailed(service, 'system', row, 'idle_pause', row.status, err);
      return false;
    }
    await service.record('system', row, 'sandbox.idle_pause', {
      idle_timeout_seconds: row.idle_timeout_seconds,
      last_activity_at: row.last_activity_at,
    });
    return true;
  });
}

/** One run of both jobs at `nowMs`: expiry first (an expired sandbox need not be paused). */
export async function runSandboxJobs(
  service: SandboxService,
  nowMs = Date.now(),
): Promise<SandboxJobsReport> {
  const expired = await expireSandboxes(service, nowMs);
  const idlePaused = await pauseIdleSandboxes(service, nowMs);
  return { expired, idlePaused };
}
