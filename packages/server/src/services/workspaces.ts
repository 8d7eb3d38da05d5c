import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { apiError } from '../errors.js';
import { newId } from '../ids.js';
import type { PlanId } from '../plans.js';
import { isoNow } from '../store/db.js';
import { insertMember } from '../store/members.js';
import type { Page, PageRequest } from '../store/pagination.js';
import {
  insertWorkspace,
  listWorkspacesForMember,
  softDeleteWorkspace,
  updateWorkspace,
  type WorkspaceWithRole,
} from '../store/workspaces.js';
import { actorOf, type Role, requireAuth, requireRole } from './access.js';
import type { ServiceDeps } from './keys.js';

/** A workspace as the API shows it, with the caller's role in it. */
export interface WorkspaceView {
  id: string;
  name: string;
  plan: PlanId;
  personal: boolean;
  role: Role;
  created_by: string;
  created_at: string;
}

/** The API view of a workspace row. */
export function toWorkspaceView(row: WorkspaceWithRole): WorkspaceView {
  return {
    id: row.id,
    name: row.name,
    plan: row.plan as PlanId,
    personal: row.personal === 1,
    role: row.role as Role,
    created_by: row.created_by,
    created_at: row.created_at,
  };
}

/** The caller's workspaces (for a key or JWT: just its own), newest first. */
export async function listWorkspaces(
  deps: ServiceDeps,
  request: FastifyRequest,
  page: PageRequest,
): Promise<Page<WorkspaceView>> {
  const auth = requireAuth(request);
  const result = await listWorkspacesForMember(deps.store.db, auth.userId, page, auth.workspaceId);
  return { data: result.data.map(toWorkspaceView), next_cursor: result.next_cursor };
}

/** Creates a (non-personal) workspace on the default plan with the caller as its owner. */
export async function createWorkspace(
  deps: ServiceDeps & { config: Config },
  request: FastifyRequest,
  input: { name: string },
): Promise<WorkspaceView> {
  const actor = actorOf(request);
  const now = isoNow();
  const row: WorkspaceWithRole = {
    id: newId('ws'),
    name: input.name.trim(),
    plan: deps.config.defaultPlan,
    personal: 0,
    created_by: actor.userId,
    created_at: now,
    deleted_at: null,
    role: 'owner',
  };
  await deps.store.db.transaction().execute(async (trx) => {
    const { role: _role, ...workspace } = row;
    await insertWorkspace(trx, workspace);
    await insertMember(trx, { workspace_id: row.id, user_id: actor.userId, role: 'owner', created_at: now });
    await deps.audit.record(
      {
        workspaceId: row.id,
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'workspace.create',
        targetType: 'workspace',
        targetId: row.id,
        ip: actor.ip,
        details: { ...actor.details, name: row.name },
      },
      trx,
    );
  });
  return toWorkspaceView(row);
}

/** One workspace the caller can see (any role). */
export async function getWorkspace(request: FastifyRequest, workspaceId: string): Promise<WorkspaceView> {
  return toWorkspaceView(await requireRole(request, workspaceId, 'viewer'));
}

/** Renames a workspace (maintainer or owner). */
export async function renameWorkspace(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
  changes: { name?: string | undefined },
): Promise<WorkspaceView> {
  const workspace = await requireRole(request, workspaceId, 'maintainer');
  const actor = actorOf(request);
  const name = changes.name?.trim();
  if (name !== undefined && name !== workspace.name) {
    await deps.store.db.transaction().execute(async (trx) => {
      await updateWorkspace(trx, workspaceId, { name });
      await deps.audit.record(
        {
          workspaceId,
          actorType: actor.actorType,
          actorId: actor.actorId,
          action: 'workspace.update',
          targetType: 'workspace',
          targetId: workspaceId,
          ip: actor.ip,
          details: { ...actor.details, name: { from: workspace.name, to: name } },
        },
        trx,
      );
    });
    workspace.name = name;
  }
  return toWorkspaceView(workspace);
}

/**
 * Soft-deletes a workspace (owner only). A personal workspace cannot be deleted (409
 * CONFLICT): it is where a user's sessions and default keys live.
 */
export async function deleteWorkspace(
  deps: ServiceDeps,
  request: FastifyRequest,
  workspaceId: string,
): Promise<void> {
  const workspace = await requireRole(request, workspaceId, 'owner');
  if (workspace.personal === 1) {
    throw apiError('CONFLICT', { reason: 'personal_workspace' }, 'A personal workspace cannot be deleted');
  }
  const actor = actorOf(request);
  await deps.store.db.transaction().execute(async (trx) => {
    if (!(await softDeleteWorkspace(trx, workspaceId, isoNow()))) throw apiError('WORKSPACE_NOT_FOUND');
    await deps.audit.record(
      {
        workspaceId,
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'workspace.delete',
        targetType: 'workspace',
        targetId: workspaceId,
        ip: actor.ip,
        details: actor.details,
      },
      trx,
    );
  });
}
