import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PluginDeps } from '../app.js';
import { apiError } from '../errors.js';
import { SESSION_COOKIE_NAME } from '../openapi.js';
import type { Auth } from '../services/access.js';
import { requireScope } from '../services/access.js';
import { authenticateApiKey, authenticateJwt, authenticateSession } from '../services/credentials.js';
import { registerCsrf } from './csrf.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, resolved before the handler; null only on public routes without credentials. */
    auth: Auth | null;
    /** The session's CSRF token when the caller authenticated with the session cookie. */
    csrfToken: string | null;
  }
  interface FastifyContextConfig {
    /** No credentials needed (health, pricing, register/login/token …). */
    public?: boolean;
    /** The scope a key/JWT must hold for this route (sessions hold `*`). */
    scope?: string;
    /** WebSocket routes: with no Authorization header, `?token=<jwt>` authenticates (browsers cannot set WebSocket headers). */
    queryToken?: boolean;
    /** Query parameters holding a capability the route verifies itself (`observe`, `tunnel`): with one, no caller is needed. */
    capabilityParam?: string | readonly string[];
  }
}

/** Routes API.md lists as public declare `config: { public: true }`; every other route needs a caller. */
function isPublicRoute(request: FastifyRequest): boolean {
  // No matched route: the not-found handler answers 404 without needing credentials.
  if (request.routeOptions.url === undefined) return true;
  const { capabilityParam } = request.routeOptions.config;
  if (capabilityParam !== undefined) {
    const query = queryOf(request);
    const params = typeof capabilityParam === 'string' ? [capabilityParam] : capabilityParam;
    if (params.some((name) => typeof query[name] === 'string')) return true;
  }
  return request.routeOptions.config.public === true;
}

function queryOf(request: FastifyRequest): Record<string, unknown> {
  return (request.query ?? {}) as Record<string, unknown>;
}

/** The `?token=` JWT of a route declaring `config.queryToken` (API keys never travel in URLs). */
function queryJwtOf(request: FastifyRequest): string | undefined {
  if (request.routeOptions.config.queryToken !== true) return undefined;
  const token = queryOf(request).token;
  return typeof token === 'string' ? token : undefined;
}

/** The credential in the Authorization header: `Bearer <key or jwt>` or `ApiKey <key>`. */
function parseAuthorization(header: string): { scheme: 'bearer' | 'apikey'; value: string } | null {
  const match = /^(Bearer|ApiKey)[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) return null;
  return { scheme: match[1]!.toLowerCase() as 'bearer' | 'apikey', value: match[2]! };
}

/**
 * Authentication: an onRequest hook resolving `request.auth` from the Authorization header (API
 * key or JWT) or else the session cookie. Missing, malformed, unknown, expired and revoked
 * credentials all get the same 401 UNAUTHORIZED on non-public routes; a route's
 * `config.scope` is then checked (403 FORBIDDEN `{required_scope}`), then CSRF for
 * cookie-authenticated state-changing requests (see csrf.ts). Public routes ignore the cookie;
 * an Authorization header there is optional but, when present and invalid, still 401.
 * WebSocket routes may also take a `?token=` JWT (`config.queryToken`) and a capability
 * parameter they check themselves (`config.capabilityParam`).
 */
export async function registerAuthentication(app: FastifyInstance, deps: PluginDeps): Promise<void> {
  // Cookies are parsed only where a session could be used (no Authorization header, not a
  // public route) instead of on every request: API clients never send one.
  await app.register(cookie, { hook: false });
  const jwtSecret = new TextEncoder().encode(deps.config.jwtSecret);
  app.decorateRequest('auth', null);
  app.decorateRequest('csrfToken', null);

  app.addHook('onRequest', async (request) => {
    const isPublic = isPublicRoute(request);
    const header = request.headers.authorization;
    const queryJwt = header === undefined ? queryJwtOf(request) : undefined;
    if (queryJwt !== undefined) {
      const auth = await authenticateJwt(deps.store, jwtSecret, queryJwt);
      if (!auth) throw apiError('UNAUTHORIZED');
      request.auth = auth;
    } else if (header !== undefined) {
      const credential = parseAuthorization(header);
      let auth: Auth | null = null;
      if (credential) {
        auth = credential.value.startsWith('crl_sk_')
          ? await authenticateApiKey(deps.store, credential.value)
          : credential.scheme === 'bearer'
            ? await authenticateJwt(deps.store, jwtSecret, credential.value)
            : null;
      }
      if (!auth) throw apiError('UNAUTHORIZED');
      request.auth = auth;
    } else if (!isPublic) {
      // Public routes ignore the cookie: they need no caller, and so no CSRF check either.
      const cookieHeader = request.headers.cookie;
      request.cookies = cookieHeader ? app.parseCookie(cookieHeader) : {};
      const token = request.cookies[SESSION_COOKIE_NAME];
      const session = token ? await authenticateSession(deps.store, token) : null;
      if (session) {
        const { csrfToken, ...auth } = session;
        request.auth = auth;
        request.csrfToken = csrfToken;
      }
    }
    if (isPublic) return;
    if (!request.auth) throw apiError('UNAUTHORIZED');
    const scope = request.routeOptions.config.scope;
    if (scope !== undefined) requireScope(request, scope);
  });

  registerCsrf(app);
}
