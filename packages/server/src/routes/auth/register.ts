import { Type } from 'typebox';
import type { App } from '../../app.js';
import { ONE_HOUR_MS } from '../../plugins/rate-limit.js';
import { register } from '../../services/auth.js';
import { Email, Password, SessionResponse, setSessionCookie, WorkspaceSchema } from './schemas.js';

const RegisterBody = Type.Object(
  {
    email: Email,
    password: Password,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

const RegisterResponse = Type.Object({ ...SessionResponse.properties, workspace: WorkspaceSchema });

/** `POST /v1/auth/register`: a user, their personal workspace (as owner) and a session cookie. */
export function registerRegisterRoute(app: App): void {
  app.post(
    '/v1/auth/register',
    {
      config: {
        public: true,
        ipRateLimit: { bucket: 'register', limit: app.config.registerLimitPerHour, windowMs: ONE_HOUR_MS },
      },
      schema: {
        tags: ['auth'],
        security: [],
        summary: 'Create an account with a personal workspace; sets the session cookie',
        body: RegisterBody,
        response: { 201: RegisterResponse },
      },
    },
    async (request, reply) => {
      const result = await register(app, request.body, {
        ip: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
      });
      setSessionCookie(reply, app.config, result.session.token, result.session.expiresAt);
      reply.code(201);
      return {
        user: result.user,
        workspace: result.workspace,
        csrf_token: result.session.csrfToken,
        expires_at: result.session.expiresAt,
      };
    },
  );
}
