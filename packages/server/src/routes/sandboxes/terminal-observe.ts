import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS } from '../../services/sandbox-tokens.js';
import { requireState } from '../../services/sandboxes/states.js';
import { grantSandboxToken, terminalUrl } from '../../services/terminals/grants.js';
import type { TerminalSessions } from '../../services/terminals/manager.js';
import { SandboxParams, SECURITY } from './schemas.js';

const ObserveBody = Type.Object(
  {
    session_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'Only this session; default: any session of the sandbox',
      }),
    ),
    ttl_seconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_TOKEN_TTL_SECONDS, default: DEFAULT_TOKEN_TTL_SECONDS }),
    ),
  },
  { additionalProperties: false },
);

const ObserveToken = Type.Object({
  id: Type.String({ description: 'The token id (GET …/tokens; revoke with DELETE …/tokens/{id})' }),
  token: Type.String({ description: 'Pass as `?observe=` on …/terminal; shown once' }),
  expires_at: Type.String({ format: 'date-time' }),
  url: Type.String({
    description: 'The WebSocket URL to watch the terminal with (no other credential needed)',
  }),
});

/**
 * `POST /v1/sandboxes/{id}/observe` → a read-only observer token for the sandbox's terminal
 * (one session or any): an `observe` sandbox token, expiring and revocable. Minting lets
 * someone else watch, so it takes a developer; the token's holder sees the output and cannot
 * type or resize.
 */
export function registerTerminalObserveRoute(app: App, sessions: TerminalSessions): void {
  app.post(
    '/v1/sandboxes/:id/observe',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: 'A read-only terminal observer token',
        security: SECURITY,
        params: SandboxParams,
        body: ObserveBody,
        response: { 201: ObserveToken },
      },
      // The body is optional: none means `{}` (any session, the default lifetime).
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'exec');
      const sessionId = request.body.session_id ?? null;
      if (sessionId !== null && !sessions.get(row.id, sessionId)) {
        throw apiError('SESSION_NOT_FOUND', { id: sessionId });
      }
      const minted = await grantSandboxToken(app, request, row, {
        kind: 'observe',
        sessionId,
        ttlSeconds: request.body.ttl_seconds,
      });
      const url = terminalUrl(app.config, row.id, {
        ...(sessionId !== null ? { session: sessionId } : {}),
        observe: minted.token,
      });
      return reply.code(201).send({ id: minted.id, token: minted.token, expires_at: minted.expiresAt, url });
    },
  );
}
