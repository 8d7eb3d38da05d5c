import type { App } from '../../app.js';
import { restoreSnapshot } from '../../services/snapshot-restore.js';
import { snapshotsOf } from '../../services/snapshots.js';
import { RestoreSnapshotBody, SandboxSchema, SECURITY, SnapshotParams } from './schemas.js';

/**
 * `POST /v1/snapshots/{id}/restore` `{sandbox_id?}` → the Sandbox: 200 when restored into an
 * existing sandbox, 201 when a new one was created for it.
 */
export function registerSnapshotRestoreRoutes(app: App): void {
  app.post(
    '/v1/snapshots/:id/restore',
    {
      config: { scope: 'snapshot:restore' },
      schema: {
        tags: ['snapshots'],
        summary: 'Restore a snapshot into a sandbox of its workspace, or into a new one',
        security: SECURITY,
        params: SnapshotParams,
        body: RestoreSnapshotBody,
        response: { 200: SandboxSchema, 201: SandboxSchema },
      },
    },
    async (request, reply) => {
      const result = await restoreSnapshot(snapshotsOf(app), request, request.params.id, request.body);
      reply.code(result.created ? 201 : 200);
      return app.sandboxes.view(result.sandbox);
    },
  );
}
