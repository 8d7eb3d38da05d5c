import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';

/** A readiness check: resolves when the dependency answers, throws (or times out) when not. */
export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 2_000;

/** Adds a named check to `GET /readyz` (e.g. `runtime` once a runtime is wired in). */
export function addReadinessCheck(app: App, name: string, check: ReadinessCheck): void {
  app.readinessChecks.set(name, check);
}

async function runCheck(check: ReadinessCheck): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

const ReadyResponse = Type.Object({
  status: Type.Literal('ready'),
  checks: Type.Record(Type.String(), Type.Literal('ok')),
});

/** `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer). */
export function registerHealthRoutes(app: App): void {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process is up',
        response: { 200: Type.String({ description: 'The text `ok`.' }) },
      },
    },
    async (_request, reply) => {
      reply.type('text/plain; charset=utf-8');
      return 'ok';
    },
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary: 'Readiness: the database (and runtime) answer',
        response: { 200: ReadyResponse },
      },
    },
    async () => {
      const results = await Promise.all(
        [...app.readinessChecks].map(async ([name, check]) => [name, await runCheck(check)] as const),
      );
      const failing = results.filter(([, ok]) => !ok).map(([name]) => name);
      const checks = Object.fromEntries(results.map(([name, ok]) => [name, ok ? 'ok' : 'failed']));
      if (failing.length > 0) {
        throw apiError(
          'CAPACITY_EXHAUSTED',
          { checks, failing },
          `Not ready: ${failing.join(', ')} unavailable`,
        );
      }
      return { status: 'ready' as const, checks: checks as Record<string, 'ok'> };
    },
  );
}
