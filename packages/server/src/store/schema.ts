import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/*
 * The store's tables, as Kysely sees them. Portable column types for SQLite and PostgreSQL:
 * ids are text, timestamps are ISO-8601 UTC text with milliseconds (`isoNow()`), booleans are
 * integers 0/1, JSON is text. Keep this in step with the migrations.
 */

/** users: people who log in. `email` is stored lowercased. */
export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string | null;
  is_admin: Generated<number>;
  created_at: string;
}

/** workspaces: every resource belongs to one. `plan` is a PlanId. */
export interface WorkspacesTable {
  id: string;
  name: string;
  plan: string;
  personal: Generated<number>;
  created_by: string;
  created_at: string;
  deleted_at: string | null;
}

/** members: a user's role in a workspace (`owner`, `maintainer`, `developer`, `viewer`). */
export interface MembersTable {
  workspace_id: string;
  user_id: string;
  role: string;
  created_at: string;
}

/** api_keys: only the hash of a key is kept; `scopes` is a JSON array of strings. */
export interface ApiKeysTable {
  id: string;
  user_id: string;
  workspace_id: string;
  name: string;
  prefix: string;
  hash: string;
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

/** sessions: dashboard logins; only the token's hash is kept. */
export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: string;
  csrf_token: string;
  created_at: string;
  expires_at: string;
  last_seen_at: string;
  ip: string | null;
  user_agent: string | null;
}

/** Who did something: a user (session/JWT), an API key, or the system itself. */
export type ActorType = 'user' | 'key' | 'system';

/** audit_events: who did what to which target, when. `details` is a JSON object. */
export interface AuditEventsTable {
  id: string;
  workspace_id: string | null;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  details: Generated<string>;
  created_at: string;
}

/** The whole database, for `Kysely<Database>`. */
export interface Database {
  users: UsersTable;
  workspaces: WorkspacesTable;
  members: MembersTable;
  api_keys: ApiKeysTable;
  sessions: SessionsTable;
  audit_events: AuditEventsTable;
}

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type WorkspaceRow = Selectable<WorkspacesTable>;
export type NewWorkspaceRow = Insertable<WorkspacesTable>;
export type WorkspaceUpdate = Updateable<WorkspacesTable>;
export type MemberRow = Selectable<MembersTable>;
export type NewMemberRow = Insertable<MembersTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKeyRow = Insertable<ApiKeysTable>;
export type SessionRow = Selectable<SessionsTable>;
export type NewSessionRow = Insertable<SessionsTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type NewAuditEventRow = Insertable<AuditEventsTable>;
