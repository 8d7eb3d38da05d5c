import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { PluginDeps } from '../app.js';
import { apiError } from '../errors.js';
import { planFor } from '../plans.js';
import { createRateLimitStore, type RateLimitResult, type RateLimitStore } from '../ratelimit/index.js';
import type { Auth } from '../services/access.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A per-client-IP limit for routes open to anyone (register, login, token), counted on
     * every request to the route whatever its credentials, apart from the caller's plan limit.
     */
    ipRateLimit?: { bucket: string; limit: number; windowMs: number };
  }
  interface FastifyRequest {
    /** This request's rate-limit outcome; null before the check, on public routes, or when the store failed. */
    rateLimit: RateLimitResult | null;
  }
}

/** Windows of the limits: plans' are per minute. */
export const ONE_MINUTE_MS = 60_000;
export const ONE_HOUR_MS = 3_600_000;
const WINDOW_MS = ONE_MINUTE_MS;
/** During a store outage, log at most one line per this interval (the metric counts every failure). */
const ERROR_LOG_INTERVAL_MS = 10_000;

/** Options of the rate-limit plugin; tests may hand in a store. */
export interface RateLimitOptions {
  /** Defaults to the store chosen by config: Redis when REDIS_URL is set, memory otherwise. The caller then closes it. */
  store?: RateLimitStore;
}

/**
 * The budget a caller spends: an API key's, shared with the JWTs minted from it (they carry the
 * key's id), or a dashboard session's.
 */
export function rateLimitKey(auth: Auth): string {
  if (auth.keyId !== null) return `key:${auth.keyId}`;
  if (auth.sessionId !== null) return `ses:${auth.sessionId}`;
  return `usr:${auth.userId}`;
}

/**
 * Rate limiting of authenticated requests by plan (requests per minute, exact sliding window;
 * see ratelimit/interface.ts). Runs after authentication; every authenticated response carries
 * X-RateLimit-Limit / -Remaining / -Reset (unix seconds when the window next frees capacity),
 * and a request over the budget is 429 RATE_LIMITED with Retry-After (seconds, ≥ 1).
 */
export async function registerRateLimit(
  app: FastifyInstance,
  deps: PluginDeps,
  options: RateLimitOptions = {},
): Promise<void> {
  const store = options.store ?? createRateLimitStore({ redisUrl: deps.config.redisUrl });
  const errorsTotal = new Counter({
    name: 'corral_ratelimit_errors_total',
    help: 'Rate-limit checks that failed (store unreachable); those requests were let through.',
    registers: [deps.metrics.registry],
  });
  const rejectedTotal = new Counter({
    name: 'corral_ratelimit_rejected_total',
    help: 'Requests answered 429 RATE_LIMITED, by plan.',
    labelNames: ['plan'],
    registers: [deps.metrics.registry],
  });
  let lastErrorLogMs = 0;
  let unloggedErrors = 0;
  // Requests whose check already ran (even if it failed), so that it runs once per request.
  const checked = new WeakSet<FastifyRequest>();

  /**
   * One hit for the caller. A store failure (Redis down) FAILS OPEN: the request goes through
   * without rate-limit headers, with an error log and `corral_ratelimit_errors_total`. The
   * limiter protects the API's capacity; an outage of it must not become an outage of the API
   * (every replica would answer 500/503 to everyone), whereas a few minutes without limits is
   * survivable and visible on the metric.
   */
  async function check(request: FastifyRequest, auth: Auth): Promise<RateLimitResult | null> {
    checked.add(request);
    const limit = planFor(auth.plan).requestsPerMinute;
    const result = await hit(request, rateLimitKey(auth), limit, WINDOW_MS);
    request.rateLimit = result;
    if (result && !result.allowed) rejectedTotal.inc({ plan: auth.plan });
    return result;
  }

  /** One hit on the store; null when the store failed (logged, counted, and let through). */
  async function hit(
    request: FastifyRequest,
    key: string,
    limit: number,
    windowMs: number,
  ): Promise<RateLimitResult | null> {
    try {
      return await store.hit(key, limit, windowMs);
    } catch (err) {
      errorsTotal.inc();
      unloggedErrors++;
      const now = Date.now();
      if (now - lastErrorLogMs >= ERROR_LOG_INTERVAL_MS) {
        request.log.error({ err, failures: unloggedErrors }, 'rate-limit store failed; failing open');
        lastErrorLogMs = now;
        unloggedErrors = 0;
      }
      return null;
    }
  }

  // Other per-key limits (preview passwords) share the store, so they hold across replicas with Redis.
  app.decorate('rateLimitStore', store);
  app.decorateRequest('rateLimit', null);

  app.addHook('onRequest', async (request) => {
    const perIp = request.routeOptions.config.ipRateLimit;
    if (perIp !== undefined) {
      const key = `ip:${perIp.bucket}:${request.ip}`;
      const result = await hit(request, key, perIp.limit, perIp.windowMs);
      if (result && !result.allowed) {
        rejectedTotal.inc({ plan: 'ip' });
        throw apiError('RATE_LIMITED', {
          limit: result.limit,
          window_seconds: perIp.windowMs / 1000,
          retry_after_seconds: retryAfterSeconds(result),
        });
      }
    }
    if (!request.auth) return;
    const result = await check(request, request.auth);
    if (result && !result.allowed) {
      throw apiError('RATE_LIMITED', {
        limit: result.limit,
        window_seconds: WINDOW_MS / 1000,
        retry_after_seconds: retryAfterSeconds(result),
      });
    }
  });

  // Headers go on in onSend so that error responses (401 excepted: no caller) carry them too.
  // A request stopped before our onRequest hook (missing scope, CSRF) is counted here.
  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.auth) return payload;
    const result = checked.has(request) ? request.rateLimit : await check(request, request.auth);
    if (result) setHeaders(reply, result);
    return payload;
  });

  if (!options.store) {
    app.addHook('onClose', async () => {
      await store.close();
    });
  }
}

function retryAfterSeconds(result: RateLimitResult): number {
  return Math.max(1, Math.ceil(result.retryAfterMs / 1000));
}

function setHeaders(reply: FastifyReply, result: RateLimitResult): void {
  reply.header('X-RateLimit-Limit', result.limit);
  reply.header('X-RateLimit-Remaining', result.remaining);
  reply.header('X-RateLimit-Reset', Math.ceil(result.resetAtMs / 1000));
  if (!result.allowed) reply.header('Retry-After', retryAfterSeconds(result));
}
