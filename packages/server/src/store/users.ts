import type { Kysely } from 'kysely';
import { prepareQuery } from './prepared.js';
import type { Database, NewUserRow, UserRow } from './schema.js';

/** Inserts a user; `email` must already be normalised (trimmed, lowercased). */
export async function insertUser(db: Kysely<Database>, user: NewUserRow): Promise<void> {
  await db.insertInto('users').values(user).execute();
}

/** The user with this (normalised) email, if any. */
export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

const userById = prepareQuery<{ id: string }, UserRow>((db, slot) =>
  db.selectFrom('users').selectAll().where('id', '=', slot('id')),
);

/** The user with this id, if any (a hot-path query, compiled once). */
export async function findUserById(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  return (await userById(db, { id }))[0];
}

/**
 * True when `err` is a unique-constraint violation (SQLite `SQLITE_CONSTRAINT_UNIQUE` or
 * PostgreSQL `23505`), e.g. two registrations racing for one email.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}
