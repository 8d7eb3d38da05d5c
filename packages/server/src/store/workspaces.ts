import type { Kysely } from 'kysely';
import { type Page, type PageRequest, paginate } from './pagination.js';
import type { Database, NewWorkspaceRow, WorkspaceRow } from './schema.js';

/** A workspace together with one user's role in it. */
export type WorkspaceWithRole = WorkspaceRow & { role: string };

/** Inserts a workspace. */
export async function insertWorkspace(db: Kysely<Database>, workspace: NewWorkspaceRow): Promise<void> {
  await db.insertInto('workspaces').values(workspace).execute();
}

/** The live (not deleted) workspace with this id, with `userId`'s role; undefined if not a member. */
export async function findWorkspaceForMember(
  db: Kysely<Database>,
  workspaceId: string,
  userId: string,
): Promise<WorkspaceWithRole | undefined> {
  return db
    .selectFrom('workspaces as w')
    .innerJoin('members as m', 'm.workspace_id', 'w.id')
    .selectAll('w')
    .select('m.role as role')
    .where('w.id', '=', workspaceId)
    .where('m.user_id', '=', userId)
    .where('w.deleted_at', 'is', null)
    .executeTakeFirst();
}

/** The live workspaces `userId` is a member of, newest first; only `onlyId` when given. */
export async function listWorkspacesForMember(
  db: Kysely<Database>,
  userId: string,
  page: PageRequest,
  onlyId: string | null = null,
): Promise<Page<WorkspaceWithRole>> {
  let query = db
    .selectFrom('workspaces as w')
    .innerJoin('members as m', 'm.workspace_id', 'w.id')
    .selectAll('w')
    .select('m.role as role')
    .where('m.user_id', '=', userId)
    .where('w.deleted_at', 'is', null);
  if (onlyId) query = query.where('w.id', '=', onlyId);
  return paginate(query, page, { createdAtColumn: 'w.created_at', idColumn: 'w.id' });
}

/** Renames a live workspace. */
export async function updateWorkspace(
  db: Kysely<Database>,
  workspaceId: string,
  changes: { name?: string },
): Promise<void> {
  if (Object.keys(changes).length === 0) return;
  await db
    .updateTable('workspaces')
    .set(changes)
    .where('id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .execute();
}

/** Soft-deletes a workspace (its rows stay for the audit trail); true when this call did it. */
export async function softDeleteWorkspace(
  db: Kysely<Database>,
  workspaceId: string,
  at: string,
): Promise<boolean> {
  const result = await db
    .updateTable('workspaces')
    .set({ deleted_at: at })
    .where('id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
