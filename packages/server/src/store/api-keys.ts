import type { Kysely } from 'kysely';
import { type Page, type PageRequest, paginate } from './pagination.js';
import { prepareQuery } from './prepared.js';
import type { ApiKeyRow, Database, NewApiKeyRow } from './schema.js';

/** Inserts a key. */
export async function insertApiKey(db: Kysely<Database>, key: NewApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(key).execute();
}

/** The key whose secret hashes to `hash`, if any (revocation/expiry are the caller's check). */
export async function findApiKeyByHash(db: Kysely<Database>, hash: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst();
}

/** The key with this id, if any. */
export async function findApiKeyById(db: Kysely<Database>, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Marks a live key revoked; true when this call revoked it. */
export async function revokeApiKey(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Sets `last_used_at`. */
export async function touchApiKey(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
}

/**
 * A key with its workspace, its user's membership there (`role` null when no longer a member)
 * and its user — everything authentication and the hot read routes need, in one row.
 */
export type ApiKeyAuthRow = ApiKeyRow & {
  plan: string;
  role: string | null;
  workspace_name: string;
  workspace_personal: number;
  workspace_created_by: string;
  workspace_created_at: string;
  user_email: string;
  user_name: string;
  user_is_admin: number;
  user_created_at: string;
};

function buildKeyForAuth(db: Kysely<Database>) {
  return db
    .selectFrom('api_keys as k')
    .innerJoin('workspaces as w', 'w.id', 'k.workspace_id')
    .leftJoin('members as m', (join) =>
      join.onRef('m.workspace_id', '=', 'k.workspace_id').onRef('m.user_id', '=', 'k.user_id'),
    )
    .innerJoin('users as u', 'u.id', 'k.user_id')
    .selectAll('k')
    .select([
      'w.plan as plan',
      'm.role as role',
      'w.name as workspace_name',
      'w.personal as workspace_personal',
      'w.created_by as workspace_created_by',
      'w.created_at as workspace_created_at',
      'u.email as user_email',
      'u.name as user_name',
      'u.is_admin as user_is_admin',
      'u.created_at as user_created_at',
    ])
    .where('w.deleted_at', 'is', null);
}

const keyForAuthByHash = prepareQuery<{ hash: string }, ApiKeyAuthRow>((db, slot) =>
  buildKeyForAuth(db).where('k.hash', '=', slot('hash')),
);
const keyForAuthById = prepareQuery<{ id: string }, ApiKeyAuthRow>((db, slot) =>
  buildKeyForAuth(db).where('k.id', '=', slot('id')),
);

/**
 * One query for the hot path: the key (by hash or by id), its workspace, its user's current
 * role in that workspace (null when no longer a member) and its user. Keys of deleted
 * workspaces are not returned. Compiled once (see prepared.ts); the row itself is read on every call.
 */
export async function findApiKeyForAuth(
  db: Kysely<Database>,
  by: { hash: string } | { id: string },
): Promise<ApiKeyAuthRow | undefined> {
  const rows = 'hash' in by ? await keyForAuthByHash(db, by) : await keyForAuthById(db, by);
  return rows[0];
}

/** A user's unrevoked keys, newest first; only those of `workspaceId` when given. */
export async function listApiKeys(
  db: Kysely<Database>,
  userId: string,
  workspaceId: string | null,
  page: PageRequest,
): Promise<Page<ApiKeyRow>> {
  let query = db
    .selectFrom('api_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (workspaceId) query = query.where('workspace_id', '=', workspaceId);
  return paginate(query, page);
}
