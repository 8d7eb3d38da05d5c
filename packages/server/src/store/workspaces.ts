import type { Kysely } from 'kysely';
import { type Page, type PageRequest, pageLimit, paginate, toPage } from './pagination.js';
import { prepareQuery } from './prepared.js';
import type { Database, NewWorkspaceRow, WorkspaceRow } from './schema.js';

/** A workspace together with one user's role in it. */
export type WorkspaceWithRole = WorkspaceRow & { role: string };

/** Inserts a workspace. */
export async function insertWorkspace(db: Kysely<Database>, workspace: NewWorkspaceRow): Promise<void> {
  await db.insertInto('workspaces').values(workspace).execute();
}

function buildWorkspacesOfMember(db: Kysely<Database>, userId: string) {
  return db
    .selectFrom('workspaces as w')
    .innerJoin('members as m', 'm.workspace_id', 'w.id')
    .selectAll('w')
    .select('m.role as role')
    .where('m.user_id', '=', userId)
    .where('w.deleted_at', 'is', null);
}

const workspaceForMember = prepareQuery<{ workspaceId: string; userId: string }, WorkspaceWithRole>(
  (db, slot) => buildWorkspacesOfMember(db, slot('userId')).where('w.id', '=', slot('workspaceId')),
);

/** The live (not deleted) workspace with this id, with `userId`'s role; undefined if not a member. */
export async function findWorkspaceForMember(
  db: Kysely<Database>,
  workspaceId: string,
  userId: string,
): Promise<WorkspaceWithRole | undefined> {
  return (await workspaceForMember(db, { workspaceId, userId }))[0];
}

// The first page, compiled once: `GET /v1/auth/me` lists the caller's workspaces on every call.
const firstPageOfMember = prepareQuery<{ userId: string; limit: number }, WorkspaceWithRole>((db, slot) =>
  buildWorkspacesOfMember(db, slot('userId'))
    .orderBy('w.created_at', 'desc')
    .orderBy('w.id', 'desc')
    .limit(slot('limit')),
);
const onlyWorkspaceOfMember = prepareQuery<{ userId: string; id: string }, WorkspaceWithRole>((db, slot) =>
  buildWorkspacesOfMember(db, slot('userId')).where('w.id', '=', slot('id')),
);

/** The live workspaces `userId` is a member of, newest first; only `onlyId` when given. */
export async function listWorkspacesForMember(
  db: Kysely<Database>,
  userId: string,
  page: PageRequest,
  onlyId: string | null = null,
): Promise<Page<WorkspaceWithRole>> {
  if (!page.cursor) {
    // At most one row (ids are unique), so a single page with no next cursor.
    if (onlyId) return { data: await onlyWorkspaceOfMember(db, { userId, id: onlyId }), next_cursor: null };
    const limit = pageLimit(page.limit);
    return toPage(await firstPageOfMember(db, { userId, limit: limit + 1 }), limit);
  }
  let query = buildWorkspacesOfMember(db, userId);
  if (onlyId) query = query.where('w.id', '=', onlyId);
  return paginate(query, page, {
    createdAtColumn: 'w.created_at',
    idColumn: 'w.id',
  });
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
