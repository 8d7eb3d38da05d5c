import type { FastifyInstance } from 'fastify';
import { isoNow } from '../store/db.js';
import { deleteExpiredSessions } from '../store/sessions.js';

/**
 * Deletes expired sessions every `config.sessionCleanupIntervalSeconds` while the app runs:
 * started when the app is ready, stopped when it closes. The timer is unref'd, so it never
 * keeps the process alive; a failed run is logged and the next one tries again.
 */
export function registerSessionCleanup(app: FastifyInstance): void {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const runOnce = async () => {
    try {
      const deleted = await deleteExpiredSessions(app.store.db, isoNow());
      if (deleted > 0) app.log.info({ deleted }, 'expired sessions deleted');
    } catch (err) {
      app.log.error({ err }, 'deleting expired sessions failed');
    }
  };

  app.addHook('onReady', async () => {
    timer = setInterval(() => {
      // Never two runs at once when one outlasts the interval.
      if (running) return;
      running = runOnce().finally(() => {
        running = null;
      });
    }, app.config.sessionCleanupIntervalSeconds * 1000);
    timer.unref();
  });

  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer);
    timer = null;
    // The caller closes the store after the app: let a run in flight finish first.
    await running;
  });
}
