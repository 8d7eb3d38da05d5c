import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import type { SandboxRow, SandboxTokenRow } from '../../store/schema.js';
import { actorOf } from '../access.js';
import { DEFAULT_TOKEN_TTL_SECONDS, type MintedToken, type TokenKind } from '../sandbox-tokens.js';
import { previewUrl } from '../sandboxes/view.js';

/** What a mint route asks for (the route has checked access, state and input). */
export interface GrantRequest {
  kind: TokenKind;
  port?: number | null;
  sessionId?: string | null;
  ttlSeconds?: number | undefined;
}

/**
 * Mints a sandbox token for the caller of `request` and records `sandbox.token.create`
 * (`{token_id, kind, port, session_id, expires_at}`: never the token itself).
 */
export async function grantSandboxToken(
  app: FastifyInstance,
  request: FastifyRequest,
  row: SandboxRow,
  grant: GrantRequest,
): Promise<MintedToken> {
  const minted = await app.sandboxTokens.mint({
    sandboxId: row.id,
    workspaceId: row.workspace_id,
    kind: grant.kind,
    port: grant.port ?? null,
    sessionId: grant.sessionId ?? null,
    ttlSeconds: grant.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
    createdBy: actorOf(request).actorId,
  });
  await app.sandboxes.record(request, row, 'sandbox.token.create', {
    token_id: minted.id,
    kind: grant.kind,
    port: minted.row.port,
    session_id: minted.row.session_id,
    expires_at: minted.expiresAt,
  });
  return minted;
}

/**
 * The terminal WebSocket URL of sandbox `sandboxId` (`ws(s)://<public host>/v1/sandboxes/{id}/terminal`)
 * with `params` as its query (`tunnel`, `observe`, `session`).
 */
export function terminalUrl(config: Config, sandboxId: string, params: Record<string, string>): string {
  const url = new URL(`/v1/sandboxes/${sandboxId}/terminal`, config.publicUrl.replace(/^http/, 'ws'));
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/** `ssh -p <sshPort> <token>@<host of publicUrl>`: the SSH gateway takes the token as the user name. */
export function sshCommand(config: Config, token: string): string {
  // An IPv6 host is bracketed in a URL, bare on the ssh command line.
  const host = new URL(config.publicUrl).hostname.replace(/^\[(.*)\]$/, '$1');
  return `ssh -p ${config.sshPort} ${token}@${host}`;
}

/** The preview URL of `port` carrying a `port` token, exchanged there for a cookie. */
export function portForwardUrl(config: Config, sandboxId: string, port: number, token: string): string {
  return `${previewUrl(config, sandboxId, port)}/?corral_token=${encodeURIComponent(token)}`;
}

/** A token's state at `nowMs`: revoked wins over expired. */
export function tokenStatus(row: SandboxTokenRow, nowMs = Date.now()): 'active' | 'expired' | 'revoked' {
  if (row.revoked_at !== null) return 'revoked';
  return Date.parse(row.expires_at) <= nowMs ? 'expired' : 'active';
}

/** The API view of a token: its record, never the secret or its hash. */
export function toTokenView(row: SandboxTokenRow, nowMs = Date.now()) {
  return {
    id: row.id,
    kind: row.kind as TokenKind,
    port: row.port,
    session_id: row.session_id,
    created_by: row.created_by,
    created_at: row.created_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    last_used_at: row.last_used_at,
    status: tokenStatus(row, nowMs),
  };
}

/**
 * Records `action` on the token's sandbox with the token's creator as the actor (a key or a
 * user) and the token's id in the details: what a token did is traced back to who minted it.
 */
export async function recordTokenUse(
  app: FastifyInstance,
  request: FastifyRequest,
  token: SandboxTokenRow,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  await app.audit.record({
    workspaceId: token.workspace_id,
    actorType: token.created_by.startsWith('key_') ? 'key' : 'user',
    actorId: token.created_by,
    action,
    targetType: 'sandbox',
    targetId: token.sandbox_id,
    ip: request.ip,
    details: { via: 'sandbox_token', token_id: token.id, token_kind: token.kind, ...details },
  });
}
