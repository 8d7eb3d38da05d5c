import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { type Auth, type Role, roleAtLeast } from './access.js';

/**
 * A caller (API key, JWT or dashboard session) that opened a connection to a sandbox, as the
 * batch re-check sees it. A JWT is tracked by the key behind it (`keyId`), never by its own
 * `exp`: see `TokenConnections.trackCaller`.
 */
export interface CallerLogin {
  /** The API key behind a key or JWT caller (null for a session). */
  keyId: string | null;
  /** The dashboard session (null for a key or JWT). */
  sessionId: string | null;
  userId: string;
  sandboxId: string;
  /** The role the connection's route needs in the sandbox's workspace. */
  minRole: Role;
}

/** Whether a caller's connection may stay open. */
export type CallerState = 'live' | 'revoked' | 'expired' | 'denied';

/** The login a connection opened by `auth` is tracked as. */
export function callerLoginOf(auth: Auth, sandboxId: string, minRole: Role): CallerLogin {
  const session = auth.kind === 'session';
  return {
    keyId: session ? null : auth.keyId,
    sessionId: session ? auth.sessionId : null,
    userId: auth.userId,
    sandboxId,
    minRole,
  };
}

/** The name a login is grouped and reported by (one group per credential, sandbox and role). */
export function callerName(login: CallerLogin): string {
  const credential = login.keyId !== null ? `key:${login.keyId}` : `session:${login.sessionId}`;
  return `${credential} ${login.sandboxId} ${login.minRole}`;
}

/** IN lists are cut to this many values (SQLite's bound-parameter limit). */
const CHUNK = 400;

async function inChunks<T>(values: readonly string[], read: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const rows: T[] = [];
  for (let start = 0; start < values.length; start += CHUNK) {
    rows.push(...(await read(values.slice(start, start + CHUNK))));
  }
  return rows;
}

const unique = (values: (string | null)[]) => [...new Set(values.filter((v): v is string => v !== null))];

function isPast(iso: string | null, now: number): boolean {
  return iso !== null && Date.parse(iso) <= now;
}

/**
 * The state of each login (by `callerName`), in one query per kind for all of them: the keys
 * (revoked or expired), the sessions (deleted by logout, or expired), and the users' roles in
 * the sandboxes' workspaces (a removed or demoted member, a deleted sandbox or workspace).
 */
export async function callerStates(
  db: Kysely<Database>,
  logins: readonly CallerLogin[],
): Promise<Map<string, CallerState>> {
  const now = Date.now();
  const keyIds = unique(logins.map((l) => l.keyId));
  const sessionIds = unique(logins.map((l) => l.sessionId));
  const keys = await inChunks(keyIds, (ids) =>
    db.selectFrom('api_keys').select(['id', 'revoked_at', 'expires_at']).where('id', 'in', ids).execute(),
  );
  const sessions = await inChunks(sessionIds, (ids) =>
    db.selectFrom('sessions').select(['id', 'expires_at']).where('id', 'in', ids).execute(),
  );
  const sandboxIds = unique(logins.map((l) => l.sandboxId));
  const userIds = unique(logins.map((l) => l.userId));
  const roles = await inChunks(sandboxIds, (ids) =>
    db
      .selectFrom('sandboxes as s')
      .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
      .innerJoin('members as m', 'm.workspace_id', 's.workspace_id')
      .select(['s.id as sandbox_id', 'm.user_id as user_id', 'm.role as role'])
      .where('s.id', 'in', ids)
      .where('m.user_id', 'in', userIds)
      .where('s.deleted_at', 'is', null)
      .where('w.deleted_at', 'is', null)
      .execute(),
  );
  const keyById = new Map(keys.map((k) => [k.id, k]));
  const sessionById = new Map(sessions.map((s) => [s.id, s]));
  const roleOf = new Map(roles.map((r) => [`${r.user_id} ${r.sandbox_id}`, r.role]));

  const states = new Map<string, CallerState>();
  for (const login of logins) {
    states.set(callerName(login), stateOf(login));
  }
  return states;

  function stateOf(login: CallerLogin): CallerState {
    if (login.keyId !== null) {
      const key = keyById.get(login.keyId);
      if (!key || key.revoked_at !== null) return 'revoked';
      if (isPast(key.expires_at, now)) return 'expired';
    } else {
      const session = login.sessionId === null ? undefined : sessionById.get(login.sessionId);
      if (!session) return 'revoked';
      if (isPast(session.expires_at, now)) return 'expired';
    }
    const role = roleOf.get(`${login.userId} ${login.sandboxId}`);
    return role !== undefined && roleAtLeast(role, login.minRole) ? 'live' : 'denied';
  }
}
