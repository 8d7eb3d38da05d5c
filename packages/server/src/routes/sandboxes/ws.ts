import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { type Auth, requireAuth } from '../../services/access.js';
import { MAX_CHANNELS, MAX_FRAME_BYTES, MUX_PROTOCOL } from '../../services/mux/frames.js';
import { MAX_CONNECTIONS_PER_SANDBOX, muxOf } from '../../services/mux/index.js';
import { requireState } from '../../services/sandboxes/states.js';
import { TOKEN_CLOSE_CODE } from '../../services/token-connections.js';
import { requireSameOriginWebSocket } from '../../services/websocket-origin.js';
import { SandboxParams, SECURITY } from './schemas.js';

const WsQuery = Type.Object(
  {
    token: Type.Optional(
      Type.String({ maxLength: 8192, description: 'An access JWT (POST /v1/auth/token), for browsers' }),
    ),
  },
  { additionalProperties: false },
);

const DESCRIPTION = `Upgrades to a binary WebSocket (subprotocol \`${MUX_PROTOCOL}\`, which the client must offer in Sec-WebSocket-Protocol) carrying many channels at once: commands (stdin, stdout, stderr, exit), terminals (input, output, resize, exit) and TCP streams to ports inside the sandbox, each with its own credit-based flow control. Frames are \`u8 type | u32 channel | payload\`, at most ${MAX_FRAME_BYTES} bytes; up to ${MAX_CHANNELS} channels per connection; see docs/ws-protocol.md. Closing the connection kills everything it started. Credentials: the Authorization header, or \`?token=\` (an access JWT). At most ${MAX_CONNECTIONS_PER_SANDBOX} connections per sandbox. Every refusal (401, 403, 404, 409, and 400 without an upgrade or without the subprotocol) is an ordinary HTTP answer in the error shape, before any upgrade.`;

/** Sandboxes that passed the checks before the upgrade, and who opened them, by request. */
const prepared = new WeakMap<FastifyRequest, { sandboxId: string; auth: Auth }>();

/** `GET /v1/sandboxes/{id}/ws`: the multiplexed WebSocket (docs/ws-protocol.md). Developers only, scope sandbox:exec. */
export function registerSandboxWsRoutes(app: App): void {
  const connections = muxOf(app);
  app.addHook('onClose', async () => connections.closeAll());

  app.route({
    method: 'GET',
    url: '/v1/sandboxes/:id/ws',
    config: { scope: 'sandbox:exec', queryToken: true },
    schema: {
      tags: ['sandboxes'],
      summary: 'The multiplexed WebSocket (exec, PTY and TCP channels) of a running sandbox',
      description: DESCRIPTION,
      security: SECURITY,
      params: SandboxParams,
      querystring: WsQuery,
      response: { 101: Type.Null({ description: 'Switching protocols: the WebSocket is open' }) },
    },
    preHandler: async (request) => {
      if (!request.ws) throw apiError('BAD_REQUEST', { reason: 'this route needs a WebSocket upgrade' });
      const { id } = request.params as { id: string };
      const auth = requireAuth(request);
      requireSameOriginWebSocket(request, auth);
      const row = await app.sandboxes.load(request, id, 'developer');
      requireState(row.status, 'exec');
      if (!offeredProtocols(request).includes(MUX_PROTOCOL)) {
        throw apiError('BAD_REQUEST', {
          reason: `offer the WebSocket subprotocol ${MUX_PROTOCOL}`,
          supported: [MUX_PROTOCOL],
        });
      }
      if (connections.countFor(row.id) >= MAX_CONNECTIONS_PER_SANDBOX) {
        throw apiError('CONFLICT', {
          reason: 'too many multiplexed connections to this sandbox',
          max: MAX_CONNECTIONS_PER_SANDBOX,
        });
      }
      // The WebSocket server picks the first protocol offered: leave it only ours.
      request.raw.headers['sec-websocket-protocol'] = MUX_PROTOCOL;
      await app.sandboxes.record(request, row, 'sandbox.ws.open', { protocol: MUX_PROTOCOL });
      prepared.set(request, { sandboxId: row.id, auth });
    },
    handler: async () => {
      throw apiError('BAD_REQUEST', { reason: 'this route needs a WebSocket upgrade' });
    },
    wsHandler: (socket, request) => {
      const opened = prepared.get(request);
      if (!opened || socket.protocol !== MUX_PROTOCOL) {
        socket.close(1011, 'not prepared');
        return;
      }
      // Ends (1008) when the caller's key or session ends or it is no longer a developer there.
      const caller = { auth: opened.auth, sandboxId: opened.sandboxId, minRole: 'developer' as const };
      const close = (reason: string) => socket.close(TOKEN_CLOSE_CODE, reason);
      socket.once('close', app.tokenConnections.trackCaller(caller, close));
      connections.accept(socket, opened.sandboxId);
    },
  });
}

/** The subprotocols the client offered (Sec-WebSocket-Protocol), in order. */
function offeredProtocols(request: FastifyRequest): string[] {
  const header = request.headers['sec-websocket-protocol'];
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  return text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
