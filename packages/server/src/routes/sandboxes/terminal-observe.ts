import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { requireState } from '../../services/sandboxes/states.js';
import type { UrlSigner } from '../../services/signed-urls.js';
import type { TerminalSessions } from '../../services/terminals/manager.js';
import {
  DEFAULT_OBSERVE_TTL_SECONDS,
  MAX_OBSERVE_TTL_SECONDS,
  mintObserveToken,
} from '../../services/terminals/observe-token.js';
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
      Type.Integer({ minimum: 1, maximum: MAX_OBSERVE_TTL_SECONDS, default: DEFAULT_OBSERVE_TTL_SECONDS }),
    ),
  },
  { additionalProperties: false },
);

const ObserveToken = Type.Object({
  token: Type.String({ description: 'Pass as `?observe=` on …/terminal' }),
  expires_at: Type.String({ format: 'date-time' }),
  url: Type.String({
    description: 'The WebSocket URL to watch the terminal with (no other credential needed)',
  }),
});

/**
 * `POST /v1/sandboxes/{id}/observe` → a read-only observer token for the sandbox's terminal
 * (one session or any), signed and expiring. Minting lets someone else watch, so it takes a
 * developer; the token's holder sees the output and cannot type or resize.
 */
export function registerTerminalObserveRoute(app: App, signer: UrlSigner, sessions: TerminalSessions): void {
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
      const ttlSeconds = request.body.ttl_seconds ?? DEFAULT_OBSERVE_TTL_SECONDS;
      const { token, expires } = mintObserveToken(signer, row.id, sessionId, ttlSeconds);
      const url = new URL(`/v1/sandboxes/${row.id}/terminal`, app.config.publicUrl.replace(/^http/, 'ws'));
      if (sessionId !== null) url.searchParams.set('session', sessionId);
      url.searchParams.set('observe', token);
      const expiresAt = new Date(expires * 1000).toISOString();
      await app.sandboxes.record(request, row, 'sandbox.observe.create', {
        session_id: sessionId,
        expires_at: expiresAt,
      });
      return reply.code(201).send({ token, expires_at: expiresAt, url: url.toString() });
    },
  );
}
