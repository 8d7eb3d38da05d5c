import type { FastifyRequest } from 'fastify';
import { apiError } from '../errors.js';
import type { Auth } from './access.js';

/** True when the request's Origin (if any) is this server's own host. */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.host;
  } catch {
    return false;
  }
}

/**
 * Cross-site WebSocket hijacking guard: a browser sends the session cookie on a cross-site
 * WebSocket too, so a caller authenticated by that cookie must open it from a page on this
 * origin (403 otherwise). Headers and `?token=` credentials are not sent by a browser on its
 * own and need no check.
 */
export function requireSameOriginWebSocket(request: FastifyRequest, auth: Auth): void {
  if (auth.kind === 'session' && !sameOrigin(request)) {
    throw apiError('FORBIDDEN', { reason: 'cross-origin WebSocket with a session cookie' });
  }
}
