import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { apiError } from '../errors.js';
import { newId } from '../ids.js';
import { findApiKeyById, insertApiKey, listApiKeys, revokeApiKey } from '../store/api-keys.js';
import type { AuditLog } from '../store/audit.js';
import type { Store } from '../store/db.js';
import { isoNow } from '../store/db.js';
import type { Page, PageRequest } from '../store/pagination.js';
import type { ApiKeyRow, Database } from '../store/schema.js';
import { findWorkspaceForMember } from '../store/workspaces.js';
import { actorOf, requireAuth } from './access.js';
import { firstUncoveredScope, isValidScope } from './scopes.js';
import { generateApiKey } from './tokens.js';

/** What the services need from the app. */
export interface ServiceDeps {
  store: Store;
  audit: AuditLog;
}

/** An API key as the API shows it: never the secret, never its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  workspace_id: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

/** Parses a stored scopes column (a JSON array); anything else grants nothing. */
export function parseScopes(text: string): string[] {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

/** The API view of a key row. */
export function toApiKeyView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: parseScopes(row.scopes),
    workspace_id: row.workspace_id,
    created_at: row.created_at,
    last_used_at: row.last_used_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
  };
}

/** What `createApiKey` needs; `actor` defaults to the system (first-start bootstrap). */
export interface CreateApiKeyInput {
  userId: string;
  workspaceId: string;
  name: string;
  scopes: string[];
  expiresAt?: string | null;
  actor?: {
    actorType: 'user' | 'key' | 'system';
    actorId: string | null;
    ip: string | null;
    details?: object;
  };
}

/**
 * Creates a key and returns its view plus the secret `key`, which exists only in this return
 * value (the store keeps its SHA-256 and a 12-character display prefix). No permission
 * checks: callers (the route, or the first-start bootstrap with `scopes: ['*']`) do those.
 */
export async function createApiKey(
  deps: ServiceDeps,
  input: CreateApiKeyInput,
): Promise<ApiKeyView & { key: string }> {
  const secret = generateApiKey();
  const row: ApiKeyRow = {
    id: newId('key'),
    user_id: input.userId,
    workspace_id: input.workspaceId,
    name: input.name,
    prefix: secret.prefix,
    hash: secret.hash,
    scopes: JSON.stringify([...new Set(input.scopes)]),
    created_at: isoNow(),
    last_used_at: null,
    expires_at: input.expiresAt ?? null,
    revoked_at: null,
  };
  const actor = input.actor ?? { actorType: 'system' as const, actorId: null, ip: null };
  await deps.store.db.transaction().execute(async (trx) => {
    await insertApiKey(trx, row);
    await deps.audit.record(
      {
        workspaceId: row.workspace_id,
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'api_key.create',
        targetType: 'api_key',
        targetId: row.id,
        ip: actor.ip,
        details: { ...actor.details, name: row.name, scopes: JSON.parse(row.scopes), prefix: row.prefix },
      },
      trx,
    );
  });
  return { ...toApiKeyView(row), key: secret.key };
}

/** The body of `POST /v1/account/keys`. */
export interface CreateKeyRequest {
  name: string;
  scopes?: string[] | undefined;
  workspace_id?: string | undefined;
  expires_at?: string | undefined;
}

/**
 * `POST /v1/account/keys` for the caller: scopes must be valid and covered by the caller's own
 * (a key cannot mint a broader key), the workspace one the caller is a member of (for a key:
 * its own workspace; default: the key's workspace, or the user's personal one), `expires_at`
 * in the future. Omitted scopes default to the caller's own.
 */
export async function createKeyForCaller(
  deps: ServiceDeps,
  request: FastifyRequest,
  body: CreateKeyRequest,
): Promise<ApiKeyView & { key: string }> {
  const auth = requireAuth(request);
  const scopes = body.scopes ?? auth.scopes;
  const invalid = scopes.find((s) => !isValidScope(s));
  if (invalid !== undefined) {
    throw apiError('VALIDATION_ERROR', {
      fields: [{ path: '/scopes', message: `unknown scope ${invalid}` }],
    });
  }
  const broader = firstUncoveredScope(auth.scopes, scopes);
  if (broader !== null) throw apiError('FORBIDDEN', { required_scope: broader });

  let expiresAt: string | null = null;
  if (body.expires_at !== undefined) {
    const time = Date.parse(body.expires_at);
    if (Number.isNaN(time) || time <= Date.now()) {
      throw apiError('VALIDATION_ERROR', {
        fields: [{ path: '/expires_at', message: 'must be a future RFC 3339 time' }],
      });
    }
    expiresAt = new Date(time).toISOString();
  }

  const workspaceId =
    body.workspace_id ?? auth.workspaceId ?? (await personalWorkspaceId(deps.store.db, auth.userId));
  if (!workspaceId) throw apiError('WORKSPACE_NOT_FOUND');
  if (auth.workspaceId !== null && workspaceId !== auth.workspaceId) throw apiError('WORKSPACE_NOT_FOUND');
  const workspace = await findWorkspaceForMember(deps.store.db, workspaceId, auth.userId);
  if (!workspace) throw apiError('WORKSPACE_NOT_FOUND');

  const actor = actorOf(request);
  return createApiKey(deps, {
    userId: auth.userId,
    workspaceId,
    name: body.name,
    scopes,
    expiresAt,
    actor: { actorType: actor.actorType, actorId: actor.actorId, ip: actor.ip, details: actor.details },
  });
}

/** The id of the user's personal workspace, or null. */
export async function personalWorkspaceId(db: Kysely<Database>, userId: string): Promise<string | null> {
  const row = await db
    .selectFrom('workspaces')
    .select('id')
    .where('created_by', '=', userId)
    .where('personal', '=', 1)
    .where('deleted_at', 'is', null)
    .orderBy('created_at', 'asc')
    .executeTakeFirst();
  return row?.id ?? null;
}

/** The caller's live keys (for a key or JWT: only those of its workspace), newest first. */
export async function listKeysForCaller(
  deps: ServiceDeps,
  request: FastifyRequest,
  page: PageRequest,
): Promise<Page<ApiKeyView>> {
  const auth = requireAuth(request);
  const result = await listApiKeys(deps.store.db, auth.userId, auth.workspaceId, page);
  return { data: result.data.map(toApiKeyView), next_cursor: result.next_cursor };
}

/**
 * Revokes one of the caller's keys; the very next request with it (or a JWT minted from it)
 * fails, since authentication reads the key row on every request. Someone else's key, a key of
 * another workspace (for a key caller), or an already revoked key is 404 KEY_NOT_FOUND.
 */
export async function revokeKeyForCaller(
  deps: ServiceDeps,
  request: FastifyRequest,
  keyId: string,
): Promise<void> {
  const auth = requireAuth(request);
  const row = await findApiKeyById(deps.store.db, keyId);
  const visible =
    row &&
    row.user_id === auth.userId &&
    row.revoked_at === null &&
    (auth.workspaceId === null || row.workspace_id === auth.workspaceId);
  if (!visible) throw apiError('KEY_NOT_FOUND');
  const actor = actorOf(request);
  await deps.store.db.transaction().execute(async (trx) => {
    if (!(await revokeApiKey(trx, keyId, isoNow()))) throw apiError('KEY_NOT_FOUND');
    await deps.audit.record(
      {
        workspaceId: row.workspace_id,
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'api_key.revoke',
        targetType: 'api_key',
        targetId: keyId,
        ip: actor.ip,
        details: actor.details,
      },
      trx,
    );
  });
}
