import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId, randomBase62 } from '../ids.js';
import { isoNow } from '../store/db.js';
import type { Database, SandboxTokenRow } from '../store/schema.js';
import { roleAtLeast } from './access.js';

/** What a sandbox token opens: an SSH login, a terminal, one HTTP port, or a read-only terminal. */
export const TOKEN_KINDS = ['ssh', 'shell', 'port', 'observe'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Every sandbox token starts with this, so a leaked one is recognisable (secret scanners). */
export const SANDBOX_TOKEN_PREFIX = 'crl_tk_';
/** Default lifetime of a sandbox token: 1 hour. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** Longest lifetime of a sandbox token: 24 hours. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;

/** How often (at most) a token's `last_used_at` is written. */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** The shape of a sandbox token; anything else is refused before the store is asked. */
const TOKEN_SHAPE = /^crl_tk_[0-9A-Za-z]{40}$/;

/** What `mint` needs. */
export interface MintTokenInput {
  sandboxId: string;
  workspaceId: string;
  kind: TokenKind;
  /** The port a `port` token opens. */
  port?: number | null;
  /** The terminal session an `observe` token is limited to. */
  sessionId?: string | null;
  ttlSeconds?: number;
  /** `usr_…` or `key_…`. */
  createdBy: string;
}

/** A freshly minted token: the secret is shown once, only its hash is kept. */
export interface MintedToken {
  id: string;
  token: string;
  expiresAt: string;
  row: SandboxTokenRow;
}

/** What a token must fit to be accepted. */
export interface TokenCheck {
  kind: TokenKind | readonly TokenKind[];
  /** The sandbox it must open (omit when the token itself names the sandbox, as in SSH logins). */
  sandboxId?: string;
  /** The port it must open (`port` tokens). */
  port?: number;
}

/** What became of a token, for connections it opened: see `SandboxTokens.states`. */
export type TokenState = 'live' | 'revoked' | 'expired' | 'refused';

/** Token ids looked up per query by `states`. */
const STATE_BATCH = 500;

/** SHA-256 hex of a token: what the store keeps and looks up. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** True when `value` has the shape of a sandbox token (not that it is valid). */
export function looksLikeSandboxToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_SHAPE.test(value);
}

/**
 * Capability tokens scoped to one sandbox and one purpose (tunnel, observe, port-forward):
 * random 238-bit secrets, stored as SHA-256 hashes, expiring, revocable. A token never opens
 * another sandbox, another kind of access or another port; a deleted sandbox's tokens open
 * nothing, and neither does one whose creator has since lost developer access (see
 * `#creatorMayStill`). Checks are indexed lookups (the hash is unique).
 */
export class SandboxTokens {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Mints a token. The caller checks access and records the audit event. */
  async mint(input: MintTokenInput, nowMs = Date.now()): Promise<MintedToken> {
    const ttl = Math.min(input.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS);
    const token = `${SANDBOX_TOKEN_PREFIX}${randomBase62(40)}`;
    const row: SandboxTokenRow = {
      id: newId('tun'),
      sandbox_id: input.sandboxId,
      workspace_id: input.workspaceId,
      kind: input.kind,
      port: input.port ?? null,
      session_id: input.sessionId ?? null,
      token_hash: hashToken(token),
      created_by: input.createdBy,
      created_at: new Date(nowMs).toISOString(),
      expires_at: new Date(nowMs + ttl * 1000).toISOString(),
      revoked_at: null,
      last_used_at: null,
    };
    await this.#db.insertInto('sandbox_tokens').values(row).execute();
    return { id: row.id, token, expiresAt: row.expires_at, row };
  }

  /**
   * The token's row when `token` is live (not expired, not revoked, its sandbox not deleted)
   * and fits `check` (kind, sandbox, port); otherwise null. Marks it used.
   */
  async verify(token: unknown, check: TokenCheck, nowMs = Date.now()): Promise<SandboxTokenRow | null> {
    if (!looksLikeSandboxToken(token)) return null;
    const row = await this.#db
      .selectFrom('sandbox_tokens')
      .innerJoin('sandboxes', 'sandboxes.id', 'sandbox_tokens.sandbox_id')
      .selectAll('sandbox_tokens')
      .where('sandbox_tokens.token_hash', '=', hashToken(token))
      .where('sandboxes.deleted_at', 'is', null)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return null;
    if (Date.parse(row.expires_at) <= nowMs) return null;
    const kinds: readonly string[] = typeof check.kind === 'string' ? [check.kind] : check.kind;
    if (!kinds.includes(row.kind)) return null;
    if (check.sandboxId !== undefined && row.sandbox_id !== check.sandboxId) return null;
    if (check.port !== undefined && row.port !== check.port) return null;
    if (!(await this.#creatorMayStill(row, nowMs))) return null;
    // `X-Corral-Token` is checked on every proxied request: write the use at most once a minute.
    const lastUsed = row.last_used_at === null ? 0 : Date.parse(row.last_used_at);
    if (nowMs - lastUsed >= LAST_USED_WRITE_INTERVAL_MS) {
      await this.#db
        .updateTable('sandbox_tokens')
        .set({ last_used_at: isoNow() })
        .where('id', '=', row.id)
        .execute();
    }
    return row;
  }

  /**
   * A token acts for whoever minted it: it stops opening anything once that user is no longer
   * a developer (or more) of the sandbox's workspace, the workspace is deleted, or the API key
   * that minted it is revoked or expired.
   */
  async #creatorMayStill(row: SandboxTokenRow, nowMs: number): Promise<boolean> {
    let userId = row.created_by;
    if (row.created_by.startsWith('key_')) {
      const key = await this.#db
        .selectFrom('api_keys')
        .select(['user_id', 'revoked_at', 'expires_at'])
        .where('id', '=', row.created_by)
        .executeTakeFirst();
      if (!key || key.revoked_at !== null) return false;
      if (key.expires_at !== null && Date.parse(key.expires_at) <= nowMs) return false;
      userId = key.user_id;
    }
    const member = await this.#db
      .selectFrom('members')
      .innerJoin('workspaces', 'workspaces.id', 'members.workspace_id')
      .select('members.role')
      .where('members.workspace_id', '=', row.workspace_id)
      .where('members.user_id', '=', userId)
      .where('workspaces.deleted_at', 'is', null)
      .executeTakeFirst();
    return member !== undefined && roleAtLeast(member.role, 'developer');
  }

  /**
   * True when token `id` of `sandboxId` (found by id, as a cookie naming it does) is still
   * live — the same checks as `verify` except the secret: kind, not revoked, not expired,
   * sandbox not deleted, creator still a developer.
   */
  async stillValid(sandboxId: string, id: string, kind: TokenKind, nowMs = Date.now()): Promise<boolean> {
    const row = await this.#db
      .selectFrom('sandbox_tokens')
      .innerJoin('sandboxes', 'sandboxes.id', 'sandbox_tokens.sandbox_id')
      .selectAll('sandbox_tokens')
      .where('sandbox_tokens.id', '=', id)
      .where('sandbox_tokens.sandbox_id', '=', sandboxId)
      .where('sandboxes.deleted_at', 'is', null)
      .executeTakeFirst();
    if (!row || row.kind !== kind || row.revoked_at !== null) return false;
    if (Date.parse(row.expires_at) <= nowMs) return false;
    return this.#creatorMayStill(row, nowMs);
  }

  /**
   * What became of each of the tokens `ids` (found by id, any sandbox): `live` when `stillValid`
   * would say so, else why not — `revoked`, `expired`, or `refused` (unknown token, sandbox or
   * workspace deleted, creator no longer a developer, minting key revoked or expired). One
   * query per 500 ids, for the periodic re-check of open connections.
   */
  async states(ids: readonly string[], nowMs = Date.now()): Promise<Map<string, TokenState>> {
    const states = new Map<string, TokenState>(ids.map((id) => [id, 'refused']));
    const unique = [...states.keys()];
    for (let start = 0; start < unique.length; start += STATE_BATCH) {
      const rows = await this.#db
        .selectFrom('sandbox_tokens as t')
        .innerJoin('sandboxes as s', 's.id', 't.sandbox_id')
        .innerJoin('workspaces as w', 'w.id', 't.workspace_id')
        .leftJoin('api_keys as k', 'k.id', 't.created_by')
        .leftJoin('members as m', (join) =>
          join
            .onRef('m.workspace_id', '=', 't.workspace_id')
            .on((eb) => eb('m.user_id', '=', eb.fn.coalesce('k.user_id', 't.created_by'))),
        )
        .select([
          't.id as id',
          't.created_by as created_by',
          't.expires_at as expires_at',
          't.revoked_at as revoked_at',
          'k.id as key_id',
          'k.revoked_at as key_revoked_at',
          'k.expires_at as key_expires_at',
          'm.role as role',
        ])
        .where('t.id', 'in', unique.slice(start, start + STATE_BATCH))
        .where('s.deleted_at', 'is', null)
        .where('w.deleted_at', 'is', null)
        .execute();
      for (const row of rows) {
        let state: TokenState = 'live';
        if (row.revoked_at !== null) state = 'revoked';
        else if (Date.parse(row.expires_at) <= nowMs) state = 'expired';
        else if (row.role === null || !roleAtLeast(row.role, 'developer')) state = 'refused';
        else if (row.created_by.startsWith('key_')) {
          const keyLive =
            row.key_id !== null &&
            row.key_revoked_at === null &&
            (row.key_expires_at === null || Date.parse(row.key_expires_at) > nowMs);
          if (!keyLive) state = 'refused';
        }
        states.set(row.id, state);
      }
    }
    return states;
  }

  /** One token of a sandbox by id, or null. */
  async get(sandboxId: string, id: string): Promise<SandboxTokenRow | null> {
    const row = await this.#db
      .selectFrom('sandbox_tokens')
      .selectAll()
      .where('sandbox_id', '=', sandboxId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ?? null;
  }

  /** A sandbox's tokens, newest first (revoked and expired ones included: the list is a record). */
  async list(sandboxId: string): Promise<SandboxTokenRow[]> {
    return this.#db
      .selectFrom('sandbox_tokens')
      .selectAll()
      .where('sandbox_id', '=', sandboxId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(500)
      .execute();
  }

  /** Revokes one token; true when it was live until now. */
  async revoke(sandboxId: string, id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('sandbox_tokens')
      .set({ revoked_at: isoNow() })
      .where('sandbox_id', '=', sandboxId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Revokes every live token of a sandbox (when it is deleted). */
  async revokeAll(sandboxId: string): Promise<void> {
    await this.#db
      .updateTable('sandbox_tokens')
      .set({ revoked_at: isoNow() })
      .where('sandbox_id', '=', sandboxId)
      .where('revoked_at', 'is', null)
      .execute();
  }
}
