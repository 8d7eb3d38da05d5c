import { apiError } from '../../errors.js';

/**
 * A sandbox's status (API.md "Sandboxes"): `starting → running ⇄ paused`,
 * `running → stopping → stopped → starting`, `hibernated` (stopped with memory kept where the
 * runtime can), any → `error`, and `deleted` (terminal).
 */
export const SANDBOX_STATUSES = [
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'hibernated',
  'error',
  'deleted',
] as const;
export type SandboxStatus = (typeof SANDBOX_STATUSES)[number];

/** Statuses that hold processes (or are about to): these count toward the plan's concurrency cap. */
export const ACTIVE_STATUSES: readonly SandboxStatus[] = ['starting', 'running', 'paused', 'stopping'];

/** Statuses in the middle of a runtime call: after a crash, reconciliation settles these. */
export const TRANSITIONAL_STATUSES: readonly SandboxStatus[] = ['starting', 'stopping'];

/** The lifecycle actions and the statuses each may start from. */
export const ACTION_FROM = {
  start: ['stopped', 'hibernated', 'error'],
  stop: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused', 'hibernated'],
  hibernate: ['running', 'paused'],
  keepalive: ['starting', 'running', 'paused', 'stopped', 'hibernated'],
  exec: ['running'],
  files: ['running'],
  snapshot: ['running', 'paused', 'stopped', 'hibernated'],
  restore: ['running', 'paused', 'stopped', 'hibernated', 'error'],
} as const satisfies Record<string, readonly SandboxStatus[]>;
export type SandboxAction = keyof typeof ACTION_FROM;

/**
 * Throws 409 INVALID_STATE `{status, action, allowed}` unless `status` allows `action`. A
 * deleted sandbox never gets here: loading it is already 404.
 */
export function requireState(status: string, action: SandboxAction): void {
  const allowed: readonly string[] = ACTION_FROM[action];
  if (!allowed.includes(status)) {
    throw apiError(
      'INVALID_STATE',
      { status, action, allowed },
      `Cannot ${action} a sandbox that is ${status} (allowed from: ${allowed.join(', ')})`,
    );
  }
}
