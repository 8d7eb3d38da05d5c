import { Type } from 'typebox';
import type { App } from '../../app.js';
import { whoAmI } from '../../services/auth.js';
import { SECURITY, UserSchema, WorkspaceSchema } from './schemas.js';

const MeResponse = Type.Object({
  user: UserSchema,
  workspaces: Type.Array(WorkspaceSchema, {
    description: "The user's workspaces with their role; for a key or JWT only the key's workspace.",
  }),
  auth: Type.Object({
    kind: Type.Enum(['key', 'jwt', 'session']),
    workspace_id: Type.Union([Type.String(), Type.Null()]),
    key_id: Type.Union([Type.String(), Type.Null()]),
    scopes: Type.Array(Type.String()),
  }),
  csrf_token: Type.Union([Type.String(), Type.Null()], { description: 'For session callers.' }),
});

/** `GET /v1/auth/me`: the caller, their workspaces and roles, and the credential's scope. */
export function registerMeRoute(app: App): void {
  app.get(
    '/v1/auth/me',
    {
      schema: {
        tags: ['auth'],
        summary: 'The current user, workspaces and role in each',
        security: SECURITY,
        response: { 200: MeResponse },
      },
    },
    async (request) => whoAmI(app, request),
  );
}
