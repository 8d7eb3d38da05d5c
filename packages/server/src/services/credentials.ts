import { isPlanId, type PlanId } from '../plans.js';
import { type ApiKeyAuthRow, findApiKeyForAuth, touchApiKey } from '../store/api-keys.js';
import type { Store } from '../store/db.js';
import { findSessionForAuth, touchSession } from '../store/sessions.js';
import type { Auth } from './access.js';
import { parseScopes } from './keys.js';
import { looksLikeApiKey, looksLikeJwt, sha256Hex, verifyAccessToken } from './tokens.js';

/** `last_used_at` / `last_seen_at` are written at most once per this many ms per credential. */
export const TOUCH_INTERVAL_MS = 60_000;

function planOf(value: string | null | undefined): PlanId {
  return value && isPlanId(value) ? value : 'free';
}

/** The user and workspace rows carried by a key's authentication row. */
function resolvedOf(key: ApiKeyAuthRow, role: string): NonNullable<Auth['resolved']> {
  return {
    user: {
      id: key.user_id,
      email: key.user_email,
      name: key.user_name,
      password_hash: null,
      is_admin: key.user_is_admin,
      created_at: key.user_created_at,
    },
    workspace: {
      id: key.workspace_id,
      name: key.workspace_name,
      plan: key.plan,
      personal: key.workspace_personal,
      created_by: key.workspace_created_by,
      created_at: key.workspace_created_at,
      deleted_at: null,
      role,
    },
  };
}

function isPast(iso: string | null, now: number): boolean {
  return iso !== null && Date.parse(iso) <= now;
}

/** Writes a "last used" stamp unless the stored one is younger than TOUCH_INTERVAL_MS. */
async function touchIfStale(
  last: string | null,
  now: number,
  write: (at: string) => Promise<void>,
): Promise<void> {
  if (last !== null && now - Date.parse(last) < TOUCH_INTERVAL_MS) return;
  await write(new Date(now).toISOString());
}

/**
 * Resolves an API key secret, or null when unknown, revoked, expired, of a deleted workspace,
 * or of a user no longer a member there. Reads the row on every call (no cache), so a
 * revocation applies to the very next request.
 */
export async function authenticateApiKey(store: Store, secret: string): Promise<Auth | null> {
  if (!looksLikeApiKey(secret)) return null;
  const now = Date.now();
  const key = await findApiKeyForAuth(store.db, { hash: sha256Hex(secret) });
  if (!key || key.revoked_at !== null || isPast(key.expires_at, now) || key.role === null) return null;
  await touchIfStale(key.last_used_at, now, (at) => touchApiKey(store.db, key.id, at));
  return {
    kind: 'key',
    userId: key.user_id,
    workspaceId: key.workspace_id,
    keyId: key.id,
    sessionId: null,
    scopes: parseScopes(key.scopes),
    plan: planOf(key.plan),
    resolved: resolvedOf(key, key.role),
  };
}

/**
 * Resolves an access JWT: signature and expiry first, then one lookup of its key by id, which
 * must still be live and match the token's user and workspace — a revoked key's JWTs stop
 * working with it. Scopes are the token's, narrowed to the key's current ones.
 */
export async function authenticateJwt(store: Store, secret: Uint8Array, token: string): Promise<Auth | null> {
  if (!looksLikeJwt(token)) return null;
  const claims = await verifyAccessToken(secret, token);
  if (!claims) return null;
  const now = Date.now();
  const key = await findApiKeyForAuth(store.db, { id: claims.kid });
  if (!key || key.revoked_at !== null || isPast(key.expires_at, now) || key.role === null) return null;
  if (key.user_id !== claims.sub || key.workspace_id !== claims.wid) return null;
  const keyScopes = parseScopes(key.scopes);
  await touchIfStale(key.last_used_at, now, (at) => touchApiKey(store.db, key.id, at));
  return {
    kind: 'jwt',
    userId: key.user_id,
    workspaceId: key.workspace_id,
    keyId: key.id,
    sessionId: null,
    scopes: claims.scopes.filter((s) => keyScopes.includes(s)),
    plan: planOf(key.plan),
    resolved: resolvedOf(key, key.role),
  };
}

/** A resolved session with its CSRF token (for the CSRF check and `GET /v1/auth/me`). */
export type SessionAuth = Auth & { csrfToken: string };

/**
 * Resolves a session cookie value, or null when unknown or expired. A session acts as its
 * user with every scope; the user's role in each workspace is what limits it.
 */
export async function authenticateSession(store: Store, token: string): Promise<SessionAuth | null> {
  if (token.length < 20 || token.length > 200) return null;
  const now = Date.now();
  const session = await findSessionForAuth(store.db, sha256Hex(token));
  if (!session || isPast(session.expires_at, now)) return null;
  await touchIfStale(session.last_seen_at, now, (at) => touchSession(store.db, session.id, at));
  return {
    kind: 'session',
    userId: session.user_id,
    workspaceId: null,
    keyId: null,
    sessionId: session.id,
    scopes: ['*'],
    plan: planOf(session.plan),
    csrfToken: session.csrf_token,
  };
}
