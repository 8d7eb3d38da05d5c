import type { FastifyInstance } from 'fastify';

/**
 * Background sandbox jobs (expiry at `expires_at`, idle auto-pause) every
 * `config.jobIntervalSeconds` while the app runs; only when a runtime is configured.
 * (Filled in by the lifecycle work: issue 4, item 2.)
 */
export function registerSandboxJobs(app: FastifyInstance): void {
  void app;
}
