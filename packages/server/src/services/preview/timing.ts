import type { SandboxRow } from '../../store/schema.js';

/** An open exchange counts as activity at least this often (and more often for short idle timeouts). */
export const ACTIVITY_INTERVAL_MS = 30_000;

/**
 * How often an open proxied exchange touches its sandbox: every 30 s, or a third of the idle
 * timeout when that is shorter (never under 1 s, the rate activity is written at), so the
 * sandbox is never found idle while a connection to it is open.
 */
export function activityIntervalMs(row: Pick<SandboxRow, 'idle_timeout_seconds'>): number {
  const idle = row.idle_timeout_seconds;
  if (idle === null || idle <= 0) return ACTIVITY_INTERVAL_MS;
  return Math.max(1000, Math.min(ACTIVITY_INTERVAL_MS, Math.floor((idle * 1000) / 3)));
}
