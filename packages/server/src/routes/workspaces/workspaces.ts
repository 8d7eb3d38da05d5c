import { Type } from 'typebox';
import type { App } from '../../app.js';
import { accessChanged } from '../../services/access-changed.js';
import {
  createWorkspace,
  deleteWorkspace,
  getWorkspace,
  listWorkspaces,
  renameWorkspace,
} from '../../services/workspaces.js';
import { SECURITY } from '../auth/schemas.js';
import { ListQuery, PageOf, WorkspaceName, WorkspaceParams, WorkspaceSchema } from './schemas.js';

const CreateWorkspaceBody = Type.Object({ name: WorkspaceName }, { additionalProperties: false });
const UpdateWorkspaceBody = Type.Object(
  { name: Type.Optional(WorkspaceName) },
  { additionalProperties: false },
);

/**
 * `GET, POST /v1/workspaces` and `GET, PATCH, DELETE /v1/workspaces/{id}`. Any member reads;
 * maintainers rename; owners delete (soft). Keys need `workspace:admin` to change anything.
 */
export function registerWorkspaceRoutes(app: App): void {
  app.get(
    '/v1/workspaces',
    {
      schema: {
        tags: ['workspaces'],
        summary: "The caller's workspaces with their role (a key: its own only)",
        security: SECURITY,
        querystring: ListQuery,
        response: { 200: PageOf(WorkspaceSchema) },
      },
    },
    async (request) => listWorkspaces(app, request, request.query),
  );

  app.post(
    '/v1/workspaces',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Create a workspace; the caller becomes its owner',
        security: SECURITY,
        body: CreateWorkspaceBody,
        response: { 201: WorkspaceSchema },
      },
    },
    async (request, reply) => {
      const workspace = await createWorkspace(app, request, request.body);
      reply.code(201);
      return workspace;
    },
  );

  app.get(
    '/v1/workspaces/:id',
    {
      schema: {
        tags: ['workspaces'],
        summary: 'One workspace (any member)',
        security: SECURITY,
        params: WorkspaceParams,
        response: { 200: WorkspaceSchema },
      },
    },
    async (request) => getWorkspace(request, request.params.id),
  );

  app.patch(
    '/v1/workspaces/:id',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Rename a workspace (maintainer or owner)',
        security: SECURITY,
        params: WorkspaceParams,
        body: UpdateWorkspaceBody,
        response: { 200: WorkspaceSchema },
      },
    },
    async (request) => renameWorkspace(app, request, request.params.id, request.body),
  );

  app.delete(
    '/v1/workspaces/:id',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Delete a workspace (owner; a personal workspace cannot be deleted)',
        security: SECURITY,
        params: WorkspaceParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await deleteWorkspace(app, request, request.params.id);
      await accessChanged(app);
      return reply.code(204).send(null);
    },
  );
}
