import type { SandboxService } from './service.js';

/** What a reconciliation pass found and fixed. */
export interface ReconcileReport {
  /** Runtime sandboxes with no live row, destroyed. */
  orphansDestroyed: number;
  /** Live rows whose sandbox the runtime does not have. */
  ghostsSettled: number;
  /** Rows whose status was brought in line with the runtime (transitional statuses included). */
  statusesFixed: number;
  durationMs: number;
}

/**
 * Brings the store and the runtime into agreement after a start or a crash.
 * (Filled in by the crash-safety work: see issue 4, item 9.)
 */
export async function reconcileSandboxes(service: SandboxService): Promise<ReconcileReport> {
  void service;
  return { orphansDestroyed: 0, ghostsSettled: 0, statusesFixed: 0, durationMs: 0 };
}
