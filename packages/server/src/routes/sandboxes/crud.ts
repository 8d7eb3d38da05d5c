import { Type } from 'typebox';
import type { App } from '../../app.js';
import { accessChanged } from '../../services/access-changed.js';
import { CreateSandboxBody } from '../../services/sandboxes/spec.js';
import {
  ListQuery,
  metadataFilter,
  PageOf,
  SandboxListQuery,
  SandboxParams,
  SandboxSchema,
  SECURITY,
} from './schemas.js';

/**
 * `POST, GET /v1/sandboxes`, `GET, DELETE /v1/sandboxes/{id}` and the workspace-scoped list
 * `GET /v1/workspaces/{id}/sandboxes`. Developers create and delete; any member reads.
 */
export function registerSandboxCrudRoutes(app: App): void {
  const sandboxes = app.sandboxes;

  app.post(
    '/v1/sandboxes',
    {
      config: { scope: 'sandbox:create' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Create a sandbox; answers once it is running',
        security: SECURITY,
        body: CreateSandboxBody,
        response: { 201: SandboxSchema },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.create(request, request.body);
      reply.code(201);
      return sandboxes.view(row);
    },
  );

  app.get(
    '/v1/sandboxes',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: "Sandboxes of a workspace (default: the key's, or your personal one), newest first",
        security: SECURITY,
        querystring: SandboxListQuery,
        response: { 200: PageOf(SandboxSchema) },
      },
    },
    async (request) => {
      const page = await sandboxes.list(request, {
        ...request.query,
        metadata: metadataFilter(request.query as Record<string, unknown>),
      });
      return { data: page.data.map((row) => sandboxes.view(row)), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/v1/workspaces/:id/sandboxes',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Sandboxes of one workspace, newest first',
        security: SECURITY,
        params: SandboxParams,
        querystring: ListQuery,
        response: { 200: PageOf(SandboxSchema) },
      },
    },
    async (request) => {
      const page = await sandboxes.list(request, { ...request.query, workspace_id: request.params.id });
      return { data: page.data.map((row) => sandboxes.view(row)), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/v1/sandboxes/:id',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'One sandbox',
        security: SECURITY,
        params: SandboxParams,
        response: { 200: SandboxSchema },
      },
    },
    async (request) => sandboxes.view(await sandboxes.load(request, request.params.id, 'viewer')),
  );

  app.delete(
    '/v1/sandboxes/:id',
    {
      config: { scope: 'sandbox:delete' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Destroy a sandbox and everything in it',
        security: SECURITY,
        params: SandboxParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      await sandboxes.destroy(request, row);
      await accessChanged(app); // connections to it (SSH, tokens, callers) end now
      return reply.code(204).send(null);
    },
  );
}
