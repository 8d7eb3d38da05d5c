import { timingSafeEqual } from 'node:crypto';
import type { AuthContext, AuthenticationType } from 'ssh2';
import ssh2 from 'ssh2';
import type { App } from '../../app.js';
import { isId } from '../../ids.js';
import type { ActorType } from '../../store/schema.js';
import { findWorkspaceForMember } from '../../store/workspaces.js';
import { roleAtLeast } from '../access.js';
import { looksLikeSandboxToken } from '../sandbox-tokens.js';
import { fingerprintOf, keysWithFingerprint, markSshKeyUsed } from './keys.js';

/** Who logged in, to which sandbox, and how. */
export interface SshLogin {
  sandboxId: string;
  workspaceId: string;
  actorType: ActorType;
  actorId: string;
  /** `token` (user name = an `ssh` sandbox token) or `key` (user name = the sandbox id). */
  via: 'token' | 'key';
  /** The sandbox token (via token) or the registered key (via key). */
  credentialId: string;
  /** When the token runs out (via token); null for a key. */
  expiresAt: string | null;
}

/** Methods offered after a refusal. */
const METHODS_LEFT: AuthenticationType[] = ['publickey', 'password', 'keyboard-interactive'];

/** What to answer an authentication attempt. */
export type AuthDecision =
  | { kind: 'accept'; login: SshLogin }
  /** A public-key query without a signature: "this key would do" (the client signs next). */
  | { kind: 'key-ok' }
  | { kind: 'reject'; methodsLeft: AuthenticationType[] };

const refused = (methodsLeft = METHODS_LEFT): AuthDecision => ({ kind: 'reject', methodsLeft });

/**
 * Decides one SSH authentication attempt (the caller answers the client with the decision).
 *
 * - User name = an `ssh` sandbox token (`crl_tk_…`): the token is the secret; methods `none`,
 *   `password` (any password) and `keyboard-interactive` (no prompts) are accepted.
 * - User name = a sandbox id, method `publickey`: a key registered by a user who is developer or
 *   more in the sandbox's workspace, the signature checked against that registered key.
 *
 * Everything else is refused. Tokens are never logged.
 */
export async function authenticate(app: App, ctx: AuthContext): Promise<AuthDecision> {
  const username = ctx.username;
  if (looksLikeSandboxToken(username)) {
    if (ctx.method !== 'none' && ctx.method !== 'password' && ctx.method !== 'keyboard-interactive') {
      return refused(['none', 'password', 'keyboard-interactive']);
    }
    const row = await app.sandboxTokens.verify(username, { kind: 'ssh' });
    if (!row) return refused();
    const login: SshLogin = {
      sandboxId: row.sandbox_id,
      workspaceId: row.workspace_id,
      actorType: row.created_by.startsWith('key_') ? 'key' : 'user',
      actorId: row.created_by,
      via: 'token',
      credentialId: row.id,
      expiresAt: row.expires_at,
    };
    return { kind: 'accept', login };
  }
  if (ctx.method !== 'publickey' || !isId(username, 'sbx')) return refused();
  const found = await keyLogin(app, username, ctx.key.data);
  if (!found) return refused();
  // Without a signature the client asks whether this key would do; it signs next.
  if (!ctx.signature) return { kind: 'key-ok' };
  const parsed = ssh2.utils.parseKey(found.publicKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !ctx.blob || key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
    return refused();
  await markSshKeyUsed(app.store.db, found.keyId);
  const login: SshLogin = {
    sandboxId: username,
    workspaceId: found.workspaceId,
    actorType: 'user',
    actorId: found.userId,
    via: 'key',
    credentialId: found.keyId,
    expiresAt: null,
  };
  return { kind: 'accept', login };
}

/**
 * The registered key (byte-equal blob) of a user who is developer or more in sandbox
 * `sandboxId`'s workspace, or null (no such live sandbox, key, or membership).
 */
async function keyLogin(app: App, sandboxId: string, blob: Buffer) {
  const sandbox = await app.sandboxes.find(sandboxId);
  if (!sandbox) return null;
  for (const row of await keysWithFingerprint(app.store.db, fingerprintOf(blob))) {
    const stored = Buffer.from(row.public_key.split(' ')[1] ?? '', 'base64');
    if (stored.length !== blob.length || !timingSafeEqual(stored, blob)) continue;
    const workspace = await findWorkspaceForMember(app.store.db, sandbox.workspace_id, row.user_id);
    if (!workspace || !roleAtLeast(workspace.role, 'developer')) continue;
    return {
      keyId: row.id,
      userId: row.user_id,
      workspaceId: sandbox.workspace_id,
      publicKey: row.public_key,
    };
  }
  return null;
}
