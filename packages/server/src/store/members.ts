import type { Kysely } from 'kysely';
import { type Page, type PageRequest, paginate } from './pagination.js';
import type { Database, MemberRow, NewMemberRow } from './schema.js';

/** A membership with the member's public profile. `id` is the user id (the cursor's tie-breaker). */
export interface MemberWithUser {
  id: string;
  workspace_id: string;
  user_id: string;
  email: string;
  name: string;
  role: string;
  created_at: string;
}

/** Inserts a membership. */
export async function insertMember(db: Kysely<Database>, member: NewMemberRow): Promise<void> {
  await db.insertInto('members').values(member).execute();
}

/** `userId`'s membership of `workspaceId`, if any. */
export async function findMember(
  db: Kysely<Database>,
  workspaceId: string,
  userId: string,
): Promise<MemberRow | undefined> {
  return db
    .selectFrom('members')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/** The members of a workspace with their profiles, oldest first. */
export async function listMembers(
  db: Kysely<Database>,
  workspaceId: string,
  page: PageRequest,
): Promise<Page<MemberWithUser>> {
  const query = db
    .selectFrom('members as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select([
      'm.user_id as id',
      'm.workspace_id as workspace_id',
      'm.user_id as user_id',
      'u.email as email',
      'u.name as name',
      'm.role as role',
      'm.created_at as created_at',
    ])
    .where('m.workspace_id', '=', workspaceId);
  return paginate(query, page, { createdAtColumn: 'm.created_at', idColumn: 'm.user_id', order: 'asc' });
}

/** How many members a workspace has, and how many of them are owners. */
export async function countMembers(
  db: Kysely<Database>,
  workspaceId: string,
): Promise<{ members: number; owners: number }> {
  const rows = await db
    .selectFrom('members')
    .select(['role', (eb) => eb.fn.countAll<number>().as('count')])
    .where('workspace_id', '=', workspaceId)
    .groupBy('role')
    .execute();
  let members = 0;
  let owners = 0;
  for (const row of rows) {
    members += Number(row.count);
    if (row.role === 'owner') owners += Number(row.count);
  }
  return { members, owners };
}

/** Changes a member's role. */
export async function updateMemberRole(
  db: Kysely<Database>,
  workspaceId: string,
  userId: string,
  role: string,
): Promise<void> {
  await db
    .updateTable('members')
    .set({ role })
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .execute();
}

/** Removes a membership; true when one was removed. */
export async function deleteMember(
  db: Kysely<Database>,
  workspaceId: string,
  userId: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom('members')
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
