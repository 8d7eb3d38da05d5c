import { Type } from 'typebox';
import type { App } from '../../app.js';
import { ListQuery, PageOf, SandboxParams, SECURITY } from './schemas.js';

/** One audit event of a sandbox. */
const SandboxEventSchema = Type.Object({
  id: Type.String(),
  action: Type.String(),
  actor_type: Type.String(),
  actor_id: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String({ format: 'date-time' }),
});

/**
 * `GET /v1/sandboxes/{id}/events`: who did what to a sandbox, newest first, paginated. Any
 * member of its workspace reads them — also after the sandbox was deleted (its history,
 * `sandbox.delete`/`sandbox.expire` included, outlives it); another workspace's is 404.
 */
export function registerSandboxEventsRoutes(app: App): void {
  app.get(
    '/v1/sandboxes/:id/events',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Audit events of a sandbox (who did what, when), newest first',
        security: SECURITY,
        params: SandboxParams,
        querystring: ListQuery,
        response: { 200: PageOf(SandboxEventSchema) },
      },
    },
    async (request) => {
      const row = await app.sandboxes.loadWithDeleted(request, request.params.id, 'viewer');
      const page = await app.audit.listForTarget(row.id, request.query);
      return {
        data: page.data.map((event) => ({
          id: event.id,
          action: event.action,
          actor_type: event.actor_type,
          actor_id: event.actor_id,
          ip: event.ip,
          details: event.details,
          created_at: event.created_at,
        })),
        next_cursor: page.next_cursor,
      };
    },
  );
}
