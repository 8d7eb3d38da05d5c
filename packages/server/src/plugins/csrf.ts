import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';
import { safeEqual } from '../services/tokens.js';

/** The header a cookie-authenticated state-changing request must carry. */
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF protection for the dashboard (synchronizer token): a state-changing request (POST,
 * PUT, PATCH, DELETE …) authenticated by the session cookie must carry `X-CSRF-Token` equal
 * to the session's token (returned by register, login and `GET /v1/auth/me`), else 403
 * FORBIDDEN. Header-authenticated requests (key, JWT) need none: a browser never adds that
 * header on its own. SameSite=Lax on the cookie is a second, independent layer.
 * Runs after authentication (registered right after it).
 */
export function registerCsrf(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    if (request.auth?.kind !== 'session' || SAFE_METHODS.has(request.method)) return;
    const sent = request.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || request.csrfToken === null || !safeEqual(sent, request.csrfToken)) {
      throw apiError('FORBIDDEN', { reason: 'csrf_token_missing_or_invalid' });
    }
  });
}
