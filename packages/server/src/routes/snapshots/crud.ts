import { Type } from 'typebox';
import type { App } from '../../app.js';
import { toSnapshotView } from '../../services/snapshot-view.js';
import { snapshotsOf } from '../../services/snapshots.js';
import { SECURITY, SnapshotParams, SnapshotSchema } from './schemas.js';

/** `GET, DELETE /v1/snapshots/{id}`: any member reads; developers delete (row and archive). */
export function registerSnapshotCrudRoutes(app: App): void {
  app.get(
    '/v1/snapshots/:id',
    {
      config: { scope: 'snapshot:read' },
      schema: {
        tags: ['snapshots'],
        summary: 'One snapshot',
        security: SECURITY,
        params: SnapshotParams,
        response: { 200: SnapshotSchema },
      },
    },
    async (request) => toSnapshotView(await snapshotsOf(app).load(request, request.params.id, 'viewer')),
  );

  app.delete(
    '/v1/snapshots/:id',
    {
      config: { scope: 'snapshot:delete' },
      schema: {
        tags: ['snapshots'],
        summary: 'Delete a snapshot and its archive',
        security: SECURITY,
        params: SnapshotParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await snapshotsOf(app).remove(request, request.params.id);
      return reply.code(204).send(null);
    },
  );
}
