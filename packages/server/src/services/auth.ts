import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { apiError } from '../errors.js';
import { newId } from '../ids.js';
import { findApiKeyForAuth } from '../store/api-keys.js';
import { isoNow } from '../store/db.js';
import { insertMember } from '../store/members.js';
import { MAX_PAGE_LIMIT } from '../store/pagination.js';
import type { UserRow } from '../store/schema.js';
import { findUserByEmail, findUserById, insertUser, isUniqueViolation } from '../store/users.js';
import { insertWorkspace, listWorkspacesForMember } from '../store/workspaces.js';
import { requireAuth } from './access.js';
import type { ServiceDeps } from './keys.js';
import { parseScopes } from './keys.js';
import type { LoginThrottle } from './login-throttle.js';
import { hashPassword, verifyAgainstDummy, verifyPassword } from './passwords.js';
import { type NewSession, startSession } from './sessions.js';
import { looksLikeApiKey, sha256Hex, signAccessToken } from './tokens.js';
import { toWorkspaceView, type WorkspaceView } from './workspaces.js';

/** Emails are compared and stored trimmed and lowercased. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Where a request came from, for sessions and the audit log. */
export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}

/** The public view of a user. */
export interface UserView {
  id: string;
  email: string;
  name: string;
  is_admin: boolean;
  created_at: string;
}

/** The API view of a user row (never the password hash). */
export function toUserView(user: UserRow): UserView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    is_admin: user.is_admin === 1,
    created_at: user.created_at,
  };
}

/**
 * Creates a user with an argon2id password hash, their personal workspace (plan: the
 * configured default) with them as owner, and a session — in one transaction. A taken email
 * is 409 CONFLICT (saying only that the email cannot be used).
 */
export async function register(
  deps: ServiceDeps & { config: Config },
  input: { email: string; password: string; name?: string | undefined },
  client: ClientInfo,
): Promise<{ user: UserView; workspace: WorkspaceView; session: NewSession }> {
  const email = normaliseEmail(input.email);
  const passwordHash = await hashPassword(input.password);
  const now = isoNow();
  const user: UserRow = {
    id: newId('usr'),
    email,
    name: input.name?.trim() || email.split('@')[0]!,
    password_hash: passwordHash,
    is_admin: 0,
    created_at: now,
  };
  const workspace: WorkspaceView = {
    id: newId('ws'),
    name: `${user.name}'s workspace`,
    plan: deps.config.defaultPlan,
    personal: true,
    role: 'owner',
    created_by: user.id,
    created_at: now,
  };
  const workspaceId = workspace.id;
  try {
    const session = await deps.store.db.transaction().execute(async (trx) => {
      if (await findUserByEmail(trx, email))
        throw apiError('CONFLICT', { field: 'email' }, 'This email cannot be used');
      await insertUser(trx, user);
      await insertWorkspace(trx, {
        id: workspaceId,
        name: workspace.name,
        plan: workspace.plan,
        personal: 1,
        created_by: user.id,
        created_at: now,
        deleted_at: null,
      });
      await insertMember(trx, {
        workspace_id: workspaceId,
        user_id: user.id,
        role: 'owner',
        created_at: now,
      });
      const created = await startSession(deps, user.id, client, trx);
      const audit = { actorType: 'user' as const, actorId: user.id, ip: client.ip };
      await deps.audit.record(
        { ...audit, action: 'user.register', targetType: 'user', targetId: user.id, workspaceId },
        trx,
      );
      await deps.audit.record(
        { ...audit, action: 'workspace.create', targetType: 'workspace', targetId: workspaceId, workspaceId },
        trx,
      );
      return created;
    });
    return { user: toUserView(user), workspace, session };
  } catch (err) {
    if (isUniqueViolation(err)) throw apiError('CONFLICT', { field: 'email' }, 'This email cannot be used');
    throw err;
  }
}

/**
 * Password login. Throttled per email and per IP (429 RATE_LIMITED with `retry_after_seconds`,
 * which becomes Retry-After); an unknown email costs the same argon2 work as a wrong password
 * and gets the same 401, so neither timing nor answer tells them apart.
 */
export async function login(
  deps: ServiceDeps,
  throttle: LoginThrottle,
  input: { email: string; password: string },
  client: ClientInfo,
): Promise<{ user: UserView; session: NewSession }> {
  const email = normaliseEmail(input.email);
  const retryAfter = throttle.retryAfterSeconds(email, client.ip);
  if (retryAfter > 0) throw apiError('RATE_LIMITED', { retry_after_seconds: retryAfter });
  const user = await findUserByEmail(deps.store.db, email);
  const ok = user?.password_hash
    ? await verifyPassword(user.password_hash, input.password)
    : await verifyAgainstDummy(input.password);
  if (!user || !ok) {
    throttle.recordFailure(email, client.ip);
    throw apiError('UNAUTHORIZED', {}, 'The email or password is wrong');
  }
  throttle.recordSuccess(email);
  const session = await startSession(deps, user.id, client);
  await deps.audit.record({
    actorType: 'user',
    actorId: user.id,
    action: 'session.create',
    targetType: 'session',
    targetId: session.id,
    ip: client.ip,
  });
  return { user: toUserView(user), session };
}

/**
 * Exchanges an API key for a 15-minute HS256 JWT with the key's user, workspace and scopes
 * (never outliving the key's own expiry). Any unusable key is the same 401.
 */
export async function issueToken(
  deps: ServiceDeps & { config: Config },
  apiKey: string,
): Promise<{ token: string; expires_at: string }> {
  if (!looksLikeApiKey(apiKey)) throw apiError('UNAUTHORIZED');
  const key = await findApiKeyForAuth(deps.store.db, { hash: sha256Hex(apiKey) });
  const now = Date.now();
  if (!key || key.revoked_at !== null || key.role === null) throw apiError('UNAUTHORIZED');
  if (key.expires_at !== null && Date.parse(key.expires_at) <= now) throw apiError('UNAUTHORIZED');
  const fifteenMinutes = new Date(now + 15 * 60_000);
  const keyExpiry = key.expires_at ? new Date(key.expires_at) : null;
  const expiresAt = keyExpiry && keyExpiry < fifteenMinutes ? keyExpiry : fifteenMinutes;
  const signed = await signAccessToken(
    new TextEncoder().encode(deps.config.jwtSecret),
    { sub: key.user_id, wid: key.workspace_id, kid: key.id, scopes: parseScopes(key.scopes) },
    expiresAt,
  );
  return { token: signed.token, expires_at: signed.expiresAt.toISOString() };
}

/** `GET /v1/auth/me`: the user, their workspaces (a key's: just its own) and the credential. */
export async function whoAmI(deps: ServiceDeps, request: FastifyRequest) {
  const auth = requireAuth(request);
  // A key/JWT: its user and its one workspace came with the authenticating query.
  const user = auth.resolved?.user ?? (await findUserById(deps.store.db, auth.userId));
  if (!user) throw apiError('UNAUTHORIZED');
  const workspaces = auth.resolved
    ? [auth.resolved.workspace]
    : (await listWorkspacesForMember(deps.store.db, auth.userId, { limit: MAX_PAGE_LIMIT }, auth.workspaceId))
        .data;
  return {
    user: toUserView(user),
    workspaces: workspaces.map(toWorkspaceView),
    auth: { kind: auth.kind, workspace_id: auth.workspaceId, key_id: auth.keyId, scopes: auth.scopes },
    csrf_token: request.csrfToken,
  };
}
