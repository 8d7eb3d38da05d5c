import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { type Auth, requireAuth } from '../../services/access.js';
import { requireState } from '../../services/sandboxes/states.js';
import { recordTokenUse } from '../../services/terminals/grants.js';
import { terminalsOf } from '../../services/terminals/index.js';
import {
  DETACHED_SESSION_TTL_MS,
  MAX_CLIENTS_PER_SESSION,
  MAX_SESSIONS_PER_SANDBOX,
} from '../../services/terminals/manager.js';
import { MAX_TERMINAL_SIZE, MIN_TERMINAL_SIZE } from '../../services/terminals/protocol.js';
import type { TerminalSession } from '../../services/terminals/session.js';
import { TOKEN_CLOSE_CODE } from '../../services/token-connections.js';
import { requireSameOriginWebSocket } from '../../services/websocket-origin.js';
import { SandboxParams, SECURITY } from './schemas.js';
import { registerTerminalObserveRoute } from './terminal-observe.js';
import { registerTerminalSessionRoutes } from './terminal-sessions.js';

const Size = (what: string) =>
  Type.Optional(
    Type.Integer({ minimum: MIN_TERMINAL_SIZE, maximum: MAX_TERMINAL_SIZE, description: `Terminal ${what}` }),
  );

const TerminalQuery = Type.Object(
  {
    session: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'Reattach to this session (its scrollback first)',
      }),
    ),
    cols: Size('columns (default 80; on reattach, resizes)'),
    rows: Size('rows (default 24; on reattach, resizes)'),
    token: Type.Optional(
      Type.String({ maxLength: 8192, description: 'An access JWT (POST /v1/auth/token), for browsers' }),
    ),
    observe: Type.Optional(
      Type.String({
        maxLength: 256,
        description: 'A read-only observer token (POST …/observe) instead of credentials',
      }),
    ),
    tunnel: Type.Optional(
      Type.String({
        maxLength: 256,
        description: 'A `shell` tunnel token (POST …/tunnel) instead of credentials: a full terminal',
      }),
    ),
  },
  { additionalProperties: false },
);
type TerminalQuery = Static<typeof TerminalQuery>;

/** What the checks before the upgrade settled: the session to attach to, and how. */
interface Attach {
  session: TerminalSession;
  observer: boolean;
  /** The sandbox token the connection was opened with (closed when it is revoked or expires). */
  token?: { id: string; expiresAt: string };
  /** Or the caller (API key, JWT, session): closed when its credential or its role ends. */
  caller?: Auth;
}
const attachments = new WeakMap<FastifyRequest, Attach>();

/** 401 for every refused sandbox token: unknown, expired, revoked, another sandbox or kind. */
const badToken = (what: string) =>
  apiError('UNAUTHORIZED', { reason: `invalid, expired or revoked ${what} token` });

const DESCRIPTION = `Upgrades to a WebSocket attached to a login shell (bash as \`user\`, the sandbox's env, TERM=xterm-256color). Binary frames carry terminal bytes both ways; text frames carry JSON control (\`resize\`, \`session\`, \`exit\` …; see docs/terminal-protocol.md). Without \`session\`, a new session starts; sessions outlive the connection and are killed ${DETACHED_SESSION_TTL_MS / 60_000} minutes after their last client leaves. Credentials: the Authorization header, or \`?token=\` (an access JWT), or \`?tunnel=\` (a \`shell\` tunnel token: a full terminal), or \`?observe=\` (an observer token: output only). Every refusal (401, 403, 404, 409) is an ordinary HTTP answer in the error shape, before any upgrade. A plain GET without an upgrade is 400.`;

/**
 * `GET /v1/sandboxes/{id}/terminal` (WebSocket), plus the sessions list/kill and observer-token
 * routes. Developers open and attach (scope sandbox:exec), and so do `shell` tunnel tokens
 * (`?tunnel=`); observer tokens (`?observe=`) only watch.
 */
export function registerSandboxTerminalRoutes(app: App): void {
  const { sessions } = terminalsOf(app);
  app.addHook('onClose', async () => sessions.closeAll());

  /** The observer's session after its token checked out (the token is checked first: nothing leaks). */
  async function prepareObserver(request: FastifyRequest, id: string, query: TerminalQuery): Promise<Attach> {
    const token = await app.sandboxTokens.verify(query.observe, { kind: 'observe', sandboxId: id });
    if (!token) throw badToken('observer');
    // A token bound to one session watches that one only (and by default).
    if (token.session_id !== null && query.session !== undefined && query.session !== token.session_id) {
      throw badToken('observer');
    }
    const sessionId = query.session ?? token.session_id ?? undefined;
    const row = await app.sandboxes.find(id);
    if (!row) throw apiError('SANDBOX_NOT_FOUND', { id });
    requireState(row.status, 'exec');
    const session = sessionId ? sessions.get(id, sessionId) : (sessions.list(id).at(-1) ?? null);
    if (!session) throw apiError('SESSION_NOT_FOUND', { id: sessionId ?? null });
    await recordTokenUse(app, request, token, 'sandbox.terminal.open', {
      session_id: session.id,
      observer: true,
    });
    return { session, observer: true, token: { id: token.id, expiresAt: token.expires_at } };
  }

  /** A `shell` token's terminal: what a developer gets, traced to the token and its creator. */
  async function prepareTunnel(request: FastifyRequest, id: string, query: TerminalQuery): Promise<Attach> {
    const token = await app.sandboxTokens.verify(query.tunnel, { kind: 'shell', sandboxId: id });
    if (!token) throw badToken('shell');
    const row = await app.sandboxes.find(id);
    if (!row) throw apiError('SANDBOX_NOT_FOUND', { id });
    requireState(row.status, 'exec');
    app.sandboxes.touch(id);
    const session = await openOrReattach(id, query);
    await recordTokenUse(app, request, token, 'sandbox.terminal.open', {
      session_id: session.id,
      reattach: query.session !== undefined,
    });
    return { session, observer: false, token: { id: token.id, expiresAt: token.expires_at } };
  }

  /** The session named by `?session=` (resized when asked), or a new one. */
  async function openOrReattach(id: string, query: TerminalQuery): Promise<TerminalSession> {
    if (query.session !== undefined) {
      const session = sessions.get(id, query.session);
      if (!session) throw apiError('SESSION_NOT_FOUND', { id: query.session });
      if (query.cols !== undefined || query.rows !== undefined) {
        session.resize(query.cols ?? session.cols, query.rows ?? session.rows);
      }
      return session;
    }
    const session = await sessions.open(id, { cols: query.cols ?? 80, rows: query.rows ?? 24 });
    if (!session)
      throw apiError('CONFLICT', { reason: 'too many terminal sessions', max: MAX_SESSIONS_PER_SANDBOX });
    return session;
  }

  async function prepareCaller(request: FastifyRequest, id: string, query: TerminalQuery): Promise<Attach> {
    const auth = requireAuth(request);
    requireSameOriginWebSocket(request, auth);
    const row = await app.sandboxes.load(request, id, 'developer');
    requireState(row.status, 'exec');
    const session = await openOrReattach(id, query);
    await app.sandboxes.record(request, row, 'sandbox.terminal.open', {
      session_id: session.id,
      reattach: query.session !== undefined,
    });
    return { session, observer: false, caller: auth };
  }

  app.route({
    method: 'GET',
    url: '/v1/sandboxes/:id/terminal',
    config: { scope: 'sandbox:exec', queryToken: true, capabilityParam: ['observe', 'tunnel'] },
    schema: {
      tags: ['sandboxes'],
      summary: 'A terminal (WebSocket PTY) in a running sandbox',
      description: DESCRIPTION,
      security: SECURITY,
      params: SandboxParams,
      querystring: TerminalQuery,
      response: { 101: Type.Null({ description: 'Switching protocols: the WebSocket is open' }) },
    },
    preHandler: async (request) => {
      if (!request.ws) throw apiError('BAD_REQUEST', { reason: 'this route needs a WebSocket upgrade' });
      const { id } = request.params as { id: string };
      const query = request.query as TerminalQuery;
      if (query.observe !== undefined && query.tunnel !== undefined) {
        throw apiError('BAD_REQUEST', { reason: 'pass either observe or tunnel, not both' });
      }
      const attach =
        query.observe !== undefined
          ? await prepareObserver(request, id, query)
          : query.tunnel !== undefined
            ? await prepareTunnel(request, id, query)
            : await prepareCaller(request, id, query);
      if (attach.session.clientCount >= MAX_CLIENTS_PER_SESSION) {
        throw apiError('CONFLICT', {
          reason: 'too many clients on this session',
          max: MAX_CLIENTS_PER_SESSION,
        });
      }
      attachments.set(request, attach);
    },
    handler: async () => {
      throw apiError('BAD_REQUEST', { reason: 'this route needs a WebSocket upgrade' });
    },
    wsHandler: (socket, request) => {
      const attach = attachments.get(request);
      if (!attach) {
        socket.close(1011, 'not prepared');
        return;
      }
      const close = (reason: string) => socket.close(TOKEN_CLOSE_CODE, reason);
      if (attach.token) socket.once('close', app.tokenConnections.track(attach.token, close));
      if (attach.caller) {
        const caller = {
          auth: attach.caller,
          sandboxId: attach.session.sandboxId,
          minRole: 'developer' as const,
        };
        socket.once('close', app.tokenConnections.trackCaller(caller, close));
      }
      attach.session.attach(socket, attach.observer);
    },
  });

  registerTerminalSessionRoutes(app, sessions);
  registerTerminalObserveRoute(app, sessions);
}
