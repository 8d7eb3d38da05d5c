import type { FastifyInstance } from 'fastify';
import { runSandboxJobs, type SandboxJobsReport } from '../services/sandboxes/jobs.js';

/**
 * One run of the sandbox jobs (expiry, idle auto-pause) now; a no-op without a runtime.
 * Exported so tests can drive the jobs without waiting for the timer.
 */
export async function runSandboxJobsOnce(app: FastifyInstance): Promise<SandboxJobsReport> {
  if (!app.sandboxes.hasRuntime) return { expired: 0, idlePaused: 0 };
  return runSandboxJobs(app.sandboxes);
}

/**
 * Background sandbox jobs (expiry at `expires_at`, idle auto-pause) every
 * `config.jobIntervalSeconds` while the app runs, only when a runtime is configured: started
 * when the app is ready, stopped when it closes, never two runs at once. The timer is
 * unref'd; a failed run is logged and the next one tries again.
 */
export function registerSandboxJobs(app: FastifyInstance): void {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const runOnce = async () => {
    try {
      const report = await runSandboxJobsOnce(app);
      if (report.expired > 0 || report.idlePaused > 0) app.log.info(report, 'sandbox jobs');
    } catch (err) {
      app.log.error({ err }, 'sandbox jobs failed');
    }
  };

  app.addHook('onReady', async () => {
    if (!app.sandboxes.hasRuntime) return;
    timer = setInterval(() => {
      if (running) return;
      running = runOnce().finally(() => {
        running = null;
      });
    }, app.config.jobIntervalSeconds * 1000);
    timer.unref();
  });

  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer);
    timer = null;
    // The caller closes the store and the runtime after the app: let a run in flight finish.
    await running;
  });
}
