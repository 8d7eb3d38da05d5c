import type { Kysely } from 'kysely';
import type { Database, NewSessionRow, SessionRow } from './schema.js';

/** Inserts a session. */
export async function insertSession(db: Kysely<Database>, session: NewSessionRow): Promise<void> {
  await db.insertInto('sessions').values(session).execute();
}

/** The session whose token hashes to `tokenHash`, if any (expiry is the caller's check). */
export async function findSessionByTokenHash(
  db: Kysely<Database>,
  tokenHash: string,
): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** Records activity on a session. */
export async function touchSession(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', id).execute();
}

/** Deletes one session (logout). */
export async function deleteSession(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('sessions').where('id', '=', id).execute();
}

/** Deletes one user's sessions that expired before `now`. */
export async function deleteExpiredSessionsOfUser(
  db: Kysely<Database>,
  userId: string,
  now: string,
): Promise<void> {
  await db.deleteFrom('sessions').where('user_id', '=', userId).where('expires_at', '<', now).execute();
}

/** Deletes sessions that expired before `now` (for a periodic job); returns how many. */
export async function deleteExpiredSessions(db: Kysely<Database>, now: string): Promise<number> {
  const result = await db.deleteFrom('sessions').where('expires_at', '<', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** A session with the plan of its user's personal workspace (null if that is gone). */
export type SessionAuthRow = SessionRow & { plan: string | null };

/** One query for the hot path: the session by token hash and its user's personal plan. */
export async function findSessionForAuth(
  db: Kysely<Database>,
  tokenHash: string,
): Promise<SessionAuthRow | undefined> {
  return db
    .selectFrom('sessions as s')
    .leftJoin('workspaces as w', (join) =>
      join.onRef('w.created_by', '=', 's.user_id').on('w.personal', '=', 1).on('w.deleted_at', 'is', null),
    )
    .selectAll('s')
    .select('w.plan as plan')
    .where('s.token_hash', '=', tokenHash)
    .orderBy('w.created_at', 'asc')
    .limit(1)
    .executeTakeFirst();
}
