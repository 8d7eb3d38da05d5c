import type { FastifyInstance } from 'fastify';
import { redactUrl } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** The route label for a request: its pattern (`/v1/sandboxes/:id`), never the raw URL. */
function routeLabel(pattern: string | undefined, statusCode: number): string {
  if (pattern) return pattern;
  return statusCode === 404 ? 'not_found' : 'unmatched';
}

/**
 * Counts and times every response, and writes one log line per request (Fastify's own
 * two-line request logging is off): method, route, status, duration, request id.
 */
export function registerMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = routeLabel(request.routeOptions.url, reply.statusCode);
    const method = request.method;
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequestsTotal.inc({ method, route, status: String(reply.statusCode) });
    metrics.httpRequestDurationSeconds.observe({ method, route }, seconds);
    const line = {
      method,
      url: redactUrl(request.url),
      route,
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
    };
    if (reply.statusCode >= 500) request.log.error(line, 'request failed');
    else request.log.info(line, 'request');
    done();
  });
}
