import type { App } from '../app.js';
import { addReadinessCheck } from '../routes/ops/health.js';

/**
 * Adds the `runtime` check to `GET /readyz` when the app has a sandbox runtime: ready while
 * the runtime answers `list()` (the readiness route times a check out after two seconds).
 */
export function registerRuntimeReadiness(app: App): void {
  if (!app.sandboxes.hasRuntime) return;
  addReadinessCheck(app, 'runtime', async () => {
    await app.sandboxes.runtime.list();
  });
}
