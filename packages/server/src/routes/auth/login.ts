import { Type } from 'typebox';
import type { App } from '../../app.js';
import { ONE_MINUTE_MS } from '../../plugins/rate-limit.js';
import { requireAuth } from '../../services/access.js';
import { accessChanged } from '../../services/access-changed.js';
import { login } from '../../services/auth.js';
import type { LoginThrottle } from '../../services/login-throttle.js';
import { endSession } from '../../services/sessions.js';
import { clearSessionCookie, Email, SECURITY, SessionResponse, setSessionCookie } from './schemas.js';

const LoginBody = Type.Object(
  // Any length up to the policy's maximum: a login must not reveal the policy of old passwords.
  { email: Email, password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);

/**
 * `POST /v1/auth/login` (throttled per email and per IP: 429 with Retry-After) and
 * `POST /v1/auth/logout` (ends the cookie's session; 204; a no-op for key/JWT callers).
 */
export function registerLoginRoutes(app: App, throttle: LoginThrottle): void {
  app.post(
    '/v1/auth/login',
    {
      config: {
        public: true,
        ipRateLimit: { bucket: 'login', limit: app.config.loginLimitPerMinute, windowMs: ONE_MINUTE_MS },
      },
      schema: {
        tags: ['auth'],
        security: [],
        summary: 'Log in with email and password; sets the session cookie',
        body: LoginBody,
        response: { 200: SessionResponse },
      },
    },
    async (request, reply) => {
      const result = await login(app, throttle, request.body, {
        ip: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
      });
      setSessionCookie(reply, app.config, result.session.token, result.session.expiresAt);
      return {
        user: result.user,
        csrf_token: result.session.csrfToken,
        expires_at: result.session.expiresAt,
      };
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'End the current session',
        security: SECURITY,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const auth = requireAuth(request);
      if (auth.sessionId) {
        await endSession(app, { sessionId: auth.sessionId, userId: auth.userId }, request.ip);
        clearSessionCookie(reply, app.config);
        await accessChanged(app); // the session's open connections end now
      }
      return reply.code(204).send(null);
    },
  );
}
