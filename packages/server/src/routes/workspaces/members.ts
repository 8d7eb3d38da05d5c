import { Type } from 'typebox';
import type { App } from '../../app.js';
import { accessChanged } from '../../services/access-changed.js';
import { addMember, changeMemberRole, listWorkspaceMembers, removeMember } from '../../services/members.js';
import { Email, SECURITY } from '../auth/schemas.js';
import { ListQuery, MemberParams, MemberSchema, PageOf, RoleSchema, WorkspaceParams } from './schemas.js';

const AddMemberBody = Type.Union(
  [
    Type.Object(
      { user_id: Type.String({ minLength: 1, maxLength: 64 }), role: RoleSchema },
      { additionalProperties: false },
    ),
    Type.Object({ email: Email, role: RoleSchema }, { additionalProperties: false }),
  ],
  { description: 'Who to add (`user_id` or `email` of an existing user) and their role.' },
);

const ChangeRoleBody = Type.Object({ role: RoleSchema }, { additionalProperties: false });

/**
 * `GET, POST /v1/workspaces/{id}/members` and `PUT, DELETE …/members/{user_id}`: any member
 * reads; maintainers add (not as owner); owners change roles and remove; anyone may leave.
 * The last owner can be neither demoted nor removed (409). Keys need `workspace:admin` to write.
 */
export function registerMemberRoutes(app: App): void {
  app.get(
    '/v1/workspaces/:id/members',
    {
      schema: {
        tags: ['workspaces'],
        summary: 'List members and their roles',
        security: SECURITY,
        params: WorkspaceParams,
        querystring: ListQuery,
        response: { 200: PageOf(MemberSchema) },
      },
    },
    async (request) => listWorkspaceMembers(app, request, request.params.id, request.query),
  );

  app.post(
    '/v1/workspaces/:id/members',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Add a member (maintainer or owner; only owners grant owner)',
        security: SECURITY,
        params: WorkspaceParams,
        body: AddMemberBody,
        response: { 201: MemberSchema },
      },
    },
    async (request, reply) => {
      const member = await addMember(app, request, request.params.id, request.body);
      reply.code(201);
      return member;
    },
  );

  app.put(
    '/v1/workspaces/:id/members/:user_id',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: "Change a member's role (owner)",
        security: SECURITY,
        params: MemberParams,
        body: ChangeRoleBody,
        response: { 200: MemberSchema },
      },
    },
    async (request) => {
      const member = await changeMemberRole(
        app,
        request,
        request.params.id,
        request.params.user_id,
        request.body.role,
      );
      await accessChanged(app); // a demoted member's open connections end now
      return member;
    },
  );

  app.delete(
    '/v1/workspaces/:id/members/:user_id',
    {
      config: { scope: 'workspace:admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Remove a member (owner), or leave (yourself)',
        security: SECURITY,
        params: MemberParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await removeMember(app, request, request.params.id, request.params.user_id);
      await accessChanged(app); // a removed member's open connections end now
      return reply.code(204).send(null);
    },
  );
}
