import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { invalidatePreviewAccess } from '../../plugins/preview.js';
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS } from '../../services/sandbox-tokens.js';
import { requireState } from '../../services/sandboxes/states.js';
import {
  grantSandboxToken,
  portForwardUrl,
  sshCommand,
  terminalUrl,
  toTokenView,
} from '../../services/terminals/grants.js';
import { SandboxParams, SECURITY } from './schemas.js';

const Ttl = Type.Optional(
  Type.Integer({
    minimum: 1,
    maximum: MAX_TOKEN_TTL_SECONDS,
    default: DEFAULT_TOKEN_TTL_SECONDS,
    description: `Lifetime in seconds (default ${DEFAULT_TOKEN_TTL_SECONDS}, at most ${MAX_TOKEN_TTL_SECONDS})`,
  }),
);
const Port = (description = 'A TCP port inside the sandbox') =>
  Type.Integer({ minimum: 1, maximum: 65535, description });

const TunnelBody = Type.Object(
  {
    kind: Type.Union([Type.Literal('ssh'), Type.Literal('shell'), Type.Literal('port')], {
      description: '`ssh`: an SSH login; `shell`: a terminal WebSocket; `port`: one HTTP port (preview)',
    }),
    port: Type.Optional(Port('A TCP port inside the sandbox: required with kind `port`, refused otherwise')),
    ttl_seconds: Ttl,
  },
  { additionalProperties: false },
);

const TunnelAnswer = Type.Object({
  id: Type.String({ description: 'The token id (GET …/tokens; revoke with DELETE …/tokens/{id})' }),
  token: Type.String({ description: 'The secret, shown once (`crl_tk_…`)' }),
  kind: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  command: Type.Optional(Type.String({ description: 'kind `ssh`: the ssh command line' })),
  url: Type.Optional(
    Type.String({ description: 'kind `shell`: the terminal WebSocket URL; kind `port`: the preview URL' }),
  ),
});

const PortForwardBody = Type.Object({ port: Port(), ttl_seconds: Ttl }, { additionalProperties: false });

const PortForwardAnswer = Type.Object({
  id: Type.String(),
  url: Type.String({ description: 'The preview URL; opening it swaps the token for a cookie' }),
  token: Type.String({ description: 'Also accepted as the `X-Corral-Token` header on the preview host' }),
  expires_at: Type.String({ format: 'date-time' }),
});

const TokenView = Type.Object({
  id: Type.String(),
  kind: Type.Union([
    Type.Literal('ssh'),
    Type.Literal('shell'),
    Type.Literal('port'),
    Type.Literal('observe'),
  ]),
  port: Type.Union([Type.Integer(), Type.Null()]),
  session_id: Type.Union([Type.String(), Type.Null()]),
  created_by: Type.String({ description: 'The user (`usr_…`) or API key (`key_…`) that minted it' }),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  status: Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('revoked')]),
});

const TokenParams = Type.Object({
  id: SandboxParams.properties.id,
  token_id: Type.String({ minLength: 1, maxLength: 64 }),
});

/**
 * `POST …/tunnel` and `POST …/port-forward` (mint ssh/shell/port tokens: developer, scope
 * sandbox:exec, running sandbox), `GET …/tokens` (developer, scope sandbox:read: the record,
 * never a secret) and `DELETE …/tokens/{token_id}` (revoke: refused at once, and the
 * connections it opened — terminals, SSH — are closed).
 */
export function registerSandboxTokenRoutes(app: App): void {
  app.post(
    '/v1/sandboxes/:id/tunnel',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: 'A tunnel token: SSH login, terminal WebSocket or one preview port',
        security: SECURITY,
        params: SandboxParams,
        body: TunnelBody,
        response: { 201: TunnelAnswer },
      },
    },
    async (request, reply) => {
      const { kind, port, ttl_seconds } = request.body;
      if (kind === 'port' && port === undefined) {
        throw apiError('VALIDATION_ERROR', {
          fields: [{ path: '/port', message: 'is required with kind port' }],
        });
      }
      if (kind !== 'port' && port !== undefined) {
        throw apiError('VALIDATION_ERROR', { fields: [{ path: '/port', message: 'is only for kind port' }] });
      }
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'exec');
      if (kind === 'ssh' && app.config.sshPort === 0) {
        throw apiError('CONFLICT', {
          reason: 'the SSH gateway is turned off on this server (CORRAL_SSH_PORT=0)',
        });
      }
      const minted = await grantSandboxToken(app, request, row, {
        kind,
        port: port ?? null,
        ttlSeconds: ttl_seconds,
      });
      const answer = { id: minted.id, token: minted.token, kind, expires_at: minted.expiresAt };
      if (kind === 'ssh')
        return reply.code(201).send({ ...answer, command: sshCommand(app.config, minted.token) });
      const url =
        kind === 'shell'
          ? terminalUrl(app.config, row.id, { tunnel: minted.token })
          : portForwardUrl(app.config, row.id, port!, minted.token);
      return reply.code(201).send({ ...answer, url });
    },
  );

  app.post(
    '/v1/sandboxes/:id/port-forward',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: "A token opening one of the sandbox's ports through its preview URL",
        security: SECURITY,
        params: SandboxParams,
        body: PortForwardBody,
        response: { 201: PortForwardAnswer },
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'exec');
      const { port, ttl_seconds } = request.body;
      const minted = await grantSandboxToken(app, request, row, {
        kind: 'port',
        port,
        ttlSeconds: ttl_seconds,
      });
      return reply.code(201).send({
        id: minted.id,
        url: portForwardUrl(app.config, row.id, port, minted.token),
        token: minted.token,
        expires_at: minted.expiresAt,
      });
    },
  );

  app.get(
    '/v1/sandboxes/:id/tokens',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: "The sandbox's tunnel, observe and port-forward tokens (newest first; never the secrets)",
        security: SECURITY,
        params: SandboxParams,
        response: {
          200: Type.Object({ data: Type.Array(TokenView), next_cursor: Type.Null() }),
        },
      },
    },
    async (request) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const now = Date.now();
      const rows = await app.sandboxTokens.list(row.id);
      return { data: rows.map((token) => toTokenView(token, now)), next_cursor: null };
    },
  );

  app.delete(
    '/v1/sandboxes/:id/tokens/:token_id',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary:
          'Revoke a token: refused from now on; the terminals, SSH sessions and preview WebSockets it opened are closed',
        security: SECURITY,
        params: TokenParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const token = await app.sandboxTokens.get(row.id, request.params.token_id);
      if (!token) throw apiError('TOKEN_NOT_FOUND', { token_id: request.params.token_id });
      const revoked = await app.sandboxTokens.revoke(row.id, token.id);
      const closed = app.tokenConnections.revoked(token.id);
      invalidatePreviewAccess(app, row.id);
      if (revoked) {
        await app.sandboxes.record(request, row, 'sandbox.token.revoke', {
          token_id: token.id,
          kind: token.kind,
          closed_connections: closed,
        });
      }
      return reply.code(204).send(null);
    },
  );
}
