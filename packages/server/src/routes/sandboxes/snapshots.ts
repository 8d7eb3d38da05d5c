import type { App } from '../../app.js';
import { toSnapshotView } from '../../services/snapshot-view.js';
import { snapshotsOf } from '../../services/snapshots.js';
import {
  CreateSnapshotBody,
  ListQuery,
  PageOf,
  SandboxParams,
  SECURITY,
  SnapshotSchema,
} from '../snapshots/schemas.js';

/**
 * `POST, GET /v1/sandboxes/{id}/snapshots`: take a snapshot (developer; answers once it is
 * stored) and list a sandbox's snapshots (any member; also after the sandbox was deleted).
 */
export function registerSandboxSnapshotsRoutes(app: App): void {
  app.post(
    '/v1/sandboxes/:id/snapshots',
    {
      config: { scope: 'snapshot:create' },
      schema: {
        tags: ['snapshots'],
        summary: 'Snapshot a sandbox (filesystem; memory too where the isolation supports it)',
        security: SECURITY,
        params: SandboxParams,
        body: CreateSnapshotBody,
        response: { 201: SnapshotSchema },
      },
    },
    async (request, reply) => {
      const row = await snapshotsOf(app).create(request, request.params.id, request.body);
      reply.code(201);
      return toSnapshotView(row);
    },
  );

  app.get(
    '/v1/sandboxes/:id/snapshots',
    {
      config: { scope: 'snapshot:read' },
      schema: {
        tags: ['snapshots'],
        summary: "A sandbox's snapshots, newest first",
        security: SECURITY,
        params: SandboxParams,
        querystring: ListQuery,
        response: { 200: PageOf(SnapshotSchema) },
      },
    },
    async (request) => {
      const page = await snapshotsOf(app).list(request, request.params.id, request.query);
      return { data: page.data.map(toSnapshotView), next_cursor: page.next_cursor };
    },
  );
}
