import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { apiError } from '../errors.js';
import { planFor } from '../plans.js';
import { isoNow } from '../store/db.js';
import {
  countMembers,
  deleteMember,
  findMember,
  insertMember,
  listMembers,
  type MemberWithUser,
  updateMemberRole,
} from '../store/members.js';
import type { Page, PageRequest } from '../store/pagination.js';
import type { Database } from '../store/schema.js';
import { findUserByEmail, findUserById } from '../store/users.js';
import { type Actor, actorOf, type Role, requireAuth, requireRole } from './access.js';
import { normaliseEmail } from './auth.js';
import type { ServiceDeps } from './keys.js';

/** A member as the API shows it. */
export interface MemberView {
  user_id: string;
  email: string;
  name: string;
  role: Role;
  created_at: string;
}

function toMemberView(row: MemberWithUser): MemberView {
  return {
    user_id: row.user_id,
    email: row.email,
    name: row.name,
    role: row.role as Role,
    created_at: row.created_at,
  };
}

/**
 * Serialises membership changes of one workspace: a no-op update takes the workspace row's
 * write lock (PostgreSQL row lock; SQLite's database write lock), so two owners demoting each
 * other cannot both pass the "last owner" check.
 */
async function lockWorkspace(trx: Kysely<Database>, workspaceId: string): Promise<void> {
  await trx
    .updateTable('workspaces')
    .set((eb) => ({ name: eb.ref('name') }))
    .where('id', '=', workspaceId)
    .execute();
}

function record(
  deps: ServiceDeps,
  trx: Kysely<Database>,
  actor: Actor,
  workspaceId: string,
  action: string,
  userId: string,
  details: object,
) {
  return deps.audit.record(
    {
      workspaceId,
      actorType: actor.actorType,
      actorId: actor.actorId,
      action,
      targetType: 'member',
      targetId: userId,
      ip: actor.ip,
      details: { ...actor.details, ...details },
    },
    trx,
  );
}

/** The members of a workspace (any role may read), oldest first. */
export async function listWorkspaceMembers(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
  page: PageRequest,
): Promise<Page<MemberView>> {
  await requireRole(request, workspaceId, 'viewer');
  const result = await listMembers(deps.store.db, workspaceId, page);
  return { data: result.data.map(toMemberView), next_cursor: result.next_cursor };
}

/**
 * Adds an existing user (by `user_id` or `email`) to a workspace: maintainers and owners may,
 * but only owners may grant `owner`. Unknown user → 404 USER_NOT_FOUND; already a member →
 * 409 CONFLICT; more members than the plan allows → 403 PLAN_LIMIT.
 */
export async function addMember(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
  input: { user_id?: string | undefined; email?: string | undefined; role: Role },
): Promise<MemberView> {
  const workspace = await requireRole(request, workspaceId, 'maintainer');
  if (input.role === 'owner' && workspace.role !== 'owner') {
    throw apiError('FORBIDDEN', { required_role: 'owner' }, 'Only an owner can grant the owner role');
  }
  const user = input.user_id
    ? await findUserById(deps.store.db, input.user_id)
    : await findUserByEmail(deps.store.db, normaliseEmail(input.email ?? ''));
  if (!user) throw apiError('USER_NOT_FOUND');
  const actor = actorOf(request);
  const now = isoNow();
  await deps.store.db.transaction().execute(async (trx) => {
    await lockWorkspace(trx, workspaceId);
    if (await findMember(trx, workspaceId, user.id)) {
      throw apiError('CONFLICT', { user_id: user.id }, 'The user is already a member');
    }
    const { members } = await countMembers(trx, workspaceId);
    const maxMembers = planFor(workspace.plan).maxMembers;
    if (members >= maxMembers)
      throw apiError('PLAN_LIMIT', { limit: 'max_members', max_members: maxMembers });
    await insertMember(trx, {
      workspace_id: workspaceId,
      user_id: user.id,
      role: input.role,
      created_at: now,
    });
    await record(deps, trx, actor, workspaceId, 'member.add', user.id, { role: input.role });
  });
  return { user_id: user.id, email: user.email, name: user.name, role: input.role, created_at: now };
}

/** Changes a member's role (owners only); demoting the last owner is 409 CONFLICT. */
export async function changeMemberRole(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
  userId: string,
  role: Role,
): Promise<MemberView> {
  await requireRole(request, workspaceId, 'owner');
  const actor = actorOf(request);
  await deps.store.db.transaction().execute(async (trx) => {
    await lockWorkspace(trx, workspaceId);
    const member = await findMember(trx, workspaceId, userId);
    if (!member) throw apiError('MEMBER_NOT_FOUND');
    if (member.role === role) return;
    if (member.role === 'owner' && (await countMembers(trx, workspaceId)).owners <= 1) {
      throw apiError('CONFLICT', { reason: 'last_owner' }, 'The last owner cannot be demoted');
    }
    await updateMemberRole(trx, workspaceId, userId, role);
    await record(deps, trx, actor, workspaceId, 'member.update', userId, {
      role: { from: member.role, to: role },
    });
  });
  const user = await findUserById(deps.store.db, userId);
  const member = await findMember(deps.store.db, workspaceId, userId);
  if (!user || !member) throw apiError('MEMBER_NOT_FOUND');
  return {
    user_id: user.id,
    email: user.email,
    name: user.name,
    role: member.role as Role,
    created_at: member.created_at,
  };
}

/**
 * Removes a member: owners may remove anyone, any member may remove themselves (leave).
 * Removing the last owner is 409 CONFLICT. The removed user's keys for this workspace stop
 * working at once (authentication requires a current membership).
 */
export async function removeMember(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
  userId: string,
): Promise<void> {
  const self = requireAuth(request).userId === userId;
  await requireRole(request, workspaceId, self ? 'viewer' : 'owner');
  const actor = actorOf(request);
  await deps.store.db.transaction().execute(async (trx) => {
    await lockWorkspace(trx, workspaceId);
    const member = await findMember(trx, workspaceId, userId);
    if (!member) throw apiError('MEMBER_NOT_FOUND');
    if (member.role === 'owner' && (await countMembers(trx, workspaceId)).owners <= 1) {
      throw apiError('CONFLICT', { reason: 'last_owner' }, 'The last owner cannot be removed');
    }
    await deleteMember(trx, workspaceId, userId);
    await record(deps, trx, actor, workspaceId, 'member.remove', userId, { role: member.role });
  });
}
