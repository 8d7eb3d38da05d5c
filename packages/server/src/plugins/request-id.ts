import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { randomBase62 } from '../ids.js';

/** An incoming X-Request-Id we keep: short, printable, no spaces (anything else is replaced). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Request ids are unique, not secret: a random per-process prefix (12 base62 characters ≈ 71
 * bits) and a counter are cheaper than fresh random bytes per request (~3% of the hot path's
 * CPU), and keep the shape of other ids (`req_` + 22 base62 characters).
 */
const PROCESS_PREFIX = `req_${randomBase62(12)}`;
let requestCounter = 0;

/** A new request id: the process prefix and the counter in 10 base-36 digits. */
export function newRequestId(): string {
  requestCounter++;
  return `${PROCESS_PREFIX}${requestCounter.toString(36).padStart(10, '0')}`;
}

/** The request id for `req`: a well-formed incoming `X-Request-Id`, or a new `req_…`. */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && ACCEPTED_REQUEST_ID.test(incoming) ? incoming : newRequestId();
}

/** Echoes the request id as `X-Request-Id` on every response, errors and 404s included. */
export function registerRequestId(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
}
