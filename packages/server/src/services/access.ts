import type { FastifyRequest } from 'fastify';
import { apiError, type ErrorCode } from '../errors.js';
import type { PlanId } from '../plans.js';
import type { ActorType, UserRow } from '../store/schema.js';
import { findWorkspaceForMember, type WorkspaceWithRole } from '../store/workspaces.js';
import { scopeAllows } from './scopes.js';

export { firstUncoveredScope, isValidScope, SCOPES, scopeAllows } from './scopes.js';

/**
 * Who is calling, resolved by the authentication plugin for every non-public route
 * (`request.auth`). `workspaceId` is the one workspace a key/JWT acts in (null for a session,
 * which may act in any workspace its user belongs to); `plan` is that workspace's plan, or for
 * a session the user's personal workspace's plan.
 */
export interface Auth {
  kind: 'key' | 'jwt' | 'session';
  userId: string;
  workspaceId: string | null;
  keyId: string | null;
  sessionId: string | null;
  scopes: string[];
  plan: PlanId;
  /**
   * For a key/JWT: its user and its workspace with the user's role, read by the same query that
   * authenticated the request, so this request's handlers need not read them again.
   */
  resolved?: { user: UserRow; workspace: WorkspaceWithRole };
}

/** Workspace roles, weakest first. */
export const ROLES = ['viewer', 'developer', 'maintainer', 'owner'] as const;
export type Role = (typeof ROLES)[number];

/** True when `role` is at least `minRole` (owner > maintainer > developer > viewer). */
export function roleAtLeast(role: string, minRole: Role): boolean {
  return ROLES.indexOf(role as Role) >= ROLES.indexOf(minRole);
}

/** The caller's identity; 401 UNAUTHORIZED when the route ran without one. */
export function requireAuth(request: FastifyRequest): Auth {
  if (!request.auth) throw apiError('UNAUTHORIZED');
  return request.auth;
}

/**
 * Throws 403 FORBIDDEN `{required_scope}` unless the caller's scopes cover `scope`
 * (`*` covers all, `sandbox:*` covers `sandbox:read` …). Routes usually declare
 * `config: { scope: '…' }` instead, which the authentication plugin checks before the handler.
 */
export function requireScope(request: FastifyRequest, scope: string): Auth {
  const auth = requireAuth(request);
  if (!scopeAllows(auth.scopes, scope)) throw apiError('FORBIDDEN', { required_scope: scope });
  return auth;
}

/**
 * Checks the caller may act in `workspaceId` with at least `minRole`, and returns the workspace
 * with the caller's role. A workspace the caller cannot see — deleted, not a member, or not the
 * key's workspace — is 404 `notFound` (default WORKSPACE_NOT_FOUND; pass e.g. SANDBOX_NOT_FOUND
 * when checking a resource's workspace), never 403, so existence does not leak. A member with
 * too weak a role gets 403 FORBIDDEN `{required_role}`.
 */
export async function requireRole(
  request: FastifyRequest,
  workspaceId: string,
  minRole: Role,
  notFound: ErrorCode = 'WORKSPACE_NOT_FOUND',
): Promise<WorkspaceWithRole> {
  const auth = requireAuth(request);
  if (auth.workspaceId !== null && auth.workspaceId !== workspaceId) throw apiError(notFound);
  // A key's own workspace was read (live, with the role) when this request was authenticated.
  const workspace =
    auth.resolved?.workspace.id === workspaceId
      ? { ...auth.resolved.workspace }
      : await findWorkspaceForMember(request.server.store.db, workspaceId, auth.userId);
  if (!workspace) throw apiError(notFound);
  if (!roleAtLeast(workspace.role, minRole)) throw apiError('FORBIDDEN', { required_role: minRole });
  return workspace;
}

/** Who to record in the audit log for this request. */
export interface Actor {
  actorType: ActorType;
  actorId: string;
  userId: string;
  ip: string;
  /** Extra audit details naming the credential (key id for a JWT). */
  details: Record<string, unknown>;
}

/** The audit actor of an authenticated request: the key for keys, the user otherwise. */
export function actorOf(request: FastifyRequest): Actor {
  const auth = requireAuth(request);
  if (auth.kind === 'key') {
    return { actorType: 'key', actorId: auth.keyId!, userId: auth.userId, ip: request.ip, details: {} };
  }
  const details = auth.kind === 'jwt' ? { via: 'jwt', key_id: auth.keyId } : { via: 'session' };
  return { actorType: 'user', actorId: auth.userId, userId: auth.userId, ip: request.ip, details };
}
