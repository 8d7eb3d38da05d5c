import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import type { TerminalSessions } from '../../services/terminals/manager.js';
import { SandboxParams, SECURITY } from './schemas.js';

const TerminalSessionSchema = Type.Object({
  id: Type.String({ description: 'Reattach with `GET …/terminal?session={id}`' }),
  created_at: Type.String({ format: 'date-time' }),
  clients: Type.Integer({ description: 'WebSockets attached now (observers included)' }),
  cols: Type.Integer(),
  rows: Type.Integer(),
  pid: Type.Integer({ description: 'The shell, inside the sandbox' }),
});

const SessionParams = Type.Object({
  id: SandboxParams.properties.id,
  sid: Type.String({ minLength: 1, maxLength: 64 }),
});

/**
 * `GET /v1/sandboxes/{id}/terminal/sessions` (any member) and
 * `DELETE /v1/sandboxes/{id}/terminal/sessions/{sid}` (developers: kills the shell; its
 * clients get the exit frame).
 */
export function registerTerminalSessionRoutes(app: App, sessions: TerminalSessions): void {
  app.get(
    '/v1/sandboxes/:id/terminal/sessions',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: "The sandbox's terminal sessions (live shells), oldest first",
        security: SECURITY,
        params: SandboxParams,
        // Every list answers {data, next_cursor}; a sandbox's live sessions fit one page.
        response: { 200: Type.Object({ data: Type.Array(TerminalSessionSchema), next_cursor: Type.Null() }) },
      },
    },
    async (request) => {
      const row = await app.sandboxes.load(request, request.params.id, 'viewer');
      return {
        data: sessions.list(row.id).map((s) => ({
          id: s.id,
          created_at: s.createdAt,
          clients: s.clientCount,
          cols: s.cols,
          rows: s.rows,
          pid: s.pid,
        })),
        next_cursor: null,
      };
    },
  );

  app.delete(
    '/v1/sandboxes/:id/terminal/sessions/:sid',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Kill a terminal session (its shell and everything it started)',
        security: SECURITY,
        params: SessionParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      if (!sessions.kill(row.id, request.params.sid)) {
        throw apiError('SESSION_NOT_FOUND', { id: request.params.sid });
      }
      await app.sandboxes.record(request, row, 'sandbox.terminal.kill', { session_id: request.params.sid });
      return reply.code(204).send(null);
    },
  );
}
