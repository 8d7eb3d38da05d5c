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

/**
 * sandboxes: one row per sandbox ever created (`deleted_at` set when destroyed; the row stays
 * for audit and usage). `resources`, `network`, `metadata`, `ports` are JSON text; `budget_usd`
 * a decimal string. The runtime's sandbox id is the row's id.
 */
export interface SandboxesTable {
  id: string;
  workspace_id: string;
  name: string;
  status: string;
  template: string;
  type: string | null;
  isolation: string;
  resources: string;
  network: string;
  metadata: Generated<string>;
  ports: Generated<string>;
  gui: Generated<number>;
  budget_usd: string | null;
  timeout_seconds: number;
  idle_timeout_seconds: number | null;
  trust_score: number | null;
  error: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  expires_at: string;
  last_activity_at: string;
  deleted_at: string | null;
}

/** sandbox_env: a sandbox's secret env vars; `value` is AES-256-GCM ciphertext (see services/secrets). */
export interface SandboxEnvTable {
  sandbox_id: string;
  name: string;
  value: string;
  updated_at: string;
}

/** snapshots: a sandbox's saved filesystem (and memory); the archive lives in the blob store at `blob_key`. */
export interface SnapshotsTable {
  id: string;
  workspace_id: string;
  sandbox_id: string;
  name: string;
  status: string;
  blob_key: string | null;
  size_bytes: number | string | null;
  sha256: string | null;
  includes_memory: Generated<number>;
  template: string;
  error: string | null;
  created_by: string;
  created_at: string;
  deleted_at: string | null;
}

/** templates: custom templates built (packages + run steps) or imported (image tarball) per workspace. */
export interface TemplatesTable {
  id: string;
  workspace_id: string;
  name: string;
  status: string;
  source: string;
  definition: Generated<string>;
  runtime_id: string | null;
  size_bytes: number | string | null;
  log: Generated<string>;
  error: string | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
  deleted_at: string | null;
}

/**
 * sandbox_tokens: capabilities scoped to one sandbox and one purpose (`kind`: `ssh`, `shell`,
 * `port`, `observe`), expiring and revocable. Only the SHA-256 of the token is kept.
 */
export interface SandboxTokensTable {
  id: string;
  sandbox_id: string;
  workspace_id: string;
  kind: string;
  /** The sandbox port a `port` token opens. */
  port: number | null;
  /** The terminal session an `observe` token is limited to (null: any). */
  session_id: string | null;
  token_hash: string;
  /** The actor who minted it (`usr_…` or `key_…`). */
  created_by: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** sandbox_ports: preview settings of one port — public (no credential needed) and/or password-protected (argon2 hash). */
export interface SandboxPortsTable {
  sandbox_id: string;
  port: number;
  public: Generated<number>;
  password_hash: string | null;
  updated_at: string;
}

/** ssh_keys: a user's registered SSH public keys (OpenSSH one-line form), for the SSH gateway. */
export interface SshKeysTable {
  id: string;
  user_id: string;
  name: string;
  /** `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256` … */
  algorithm: string;
  /** `{algorithm} {base64}` (the comment is not kept). */
  public_key: string;
  /** `SHA256:{base64, unpadded}` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  created_at: string;
  last_used_at: string | null;
}

/** The whole database, for `Kysely<Database>`. */
export interface Database {
  users: UsersTable;
  workspaces: WorkspacesTable;
  members: MembersTable;
  api_keys: ApiKeysTable;
  sessions: SessionsTable;
  audit_events: AuditEventsTable;
  sandboxes: SandboxesTable;
  sandbox_env: SandboxEnvTable;
  snapshots: SnapshotsTable;
  templates: TemplatesTable;
  sandbox_tokens: SandboxTokensTable;
  sandbox_ports: SandboxPortsTable;
  ssh_keys: SshKeysTable;
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
export type SandboxRow = Selectable<SandboxesTable>;
export type NewSandboxRow = Insertable<SandboxesTable>;
export type SandboxUpdate = Updateable<SandboxesTable>;
export type SnapshotRow = Selectable<SnapshotsTable>;
export type TemplateRow = Selectable<TemplatesTable>;
export type SandboxTokenRow = Selectable<SandboxTokensTable>;
export type SandboxPortRow = Selectable<SandboxPortsTable>;
export type SshKeyRow = Selectable<SshKeysTable>;
