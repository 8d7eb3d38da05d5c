import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../../config.js';
import { ApiError, apiError } from '../../errors.js';
import type { Store } from '../../store/db.js';
import type { SandboxRow } from '../../store/schema.js';
import { type Auth, roleAtLeast, scopeAllows } from '../access.js';
import { authenticateApiKey, authenticateJwt } from '../credentials.js';
import { verifyPassword } from '../passwords.js';
import type { SandboxTokens } from '../sandbox-tokens.js';
import type { UrlSigner } from '../signed-urls.js';
import { looksLikeJwt } from '../tokens.js';
import { ExpiringCache } from './cache.js';
import { decodePreviewCookie, passwordCredential, previewCookieOf } from './cookie.js';
import type { PortSettings } from './settings.js';
import type { PasswordThrottle } from './throttle.js';

/** The query parameter carrying a port token (exchanged for the cookie). */
export const TOKEN_PARAM = 'corral_token';
/** The header carrying a port token (API clients; no cookie is set). */
export const TOKEN_HEADER = 'x-corral-token';
/** Scope a key/JWT needs to open a private preview. */
export const PREVIEW_SCOPE = 'sandbox:exec';
/**
 * How long a checked credential (a Bearer key/JWT, an `X-Corral-Token`, a cookie's token row)
 * is trusted before the store is read again: a change made on another replica (a revoked key or
 * token, a member's new role) applies within this. This server's own changes apply at once
 * (`forgetSandbox`, `forgetCredentials`).
 */
export const ACCESS_CACHE_MS = 5_000;

/** How the request got in (for the log line and metrics). */
export type AccessVia = 'public' | 'bearer' | 'token' | 'cookie' | 'password';

/** Let through; `stripAuthorization` when the Authorization header was Corral's. */
export interface Allowed {
  kind: 'allow';
  via: AccessVia;
  stripAuthorization: boolean;
  /** A port token from `?corral_token=` (the caller sets the cookie and redirects for GET/HEAD). */
  token?: { id: string; expiresAt: string };
  /** The Bearer caller: a WebSocket it opens ends with its key or role. */
  auth?: Auth;
  /** The port token the request got in with (parameter, header or cookie): a WebSocket it opens ends with it. */
  portToken?: { id: string; expiresAt: string };
}

/** Refused: the error, and whether to show the password page (protected port) to browsers. */
export interface Denied {
  kind: 'deny';
  error: ApiError;
  passwordPage: boolean;
  headers?: Record<string, string>;
}

export type AccessDecision = Allowed | Denied;

/** What the access check needs, shared by every preview request. */
export interface AccessDeps {
  config: Config;
  store: Store;
  tokens: SandboxTokens;
  signer: UrlSigner;
  throttle: PasswordThrottle;
  jwtSecret: Uint8Array;
}

/** One request's view for the check. */
export interface AccessRequest {
  req: IncomingMessage;
  url: URL;
  row: SandboxRow;
  port: number;
  settings: PortSettings;
  clientIp: string;
}

function deny(code: Parameters<typeof apiError>[0], details = {}, passwordPage = false): Denied {
  return { kind: 'deny', error: apiError(code, details), passwordPage };
}

/** The Bearer/Basic credential in an Authorization header. */
function authorizationOf(req: IncomingMessage): { scheme: 'bearer' | 'basic'; value: string } | null {
  const match = /^(Bearer|Basic)[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '');
  return match ? { scheme: match[1]!.toLowerCase() as 'bearer' | 'basic', value: match[2]! } : null;
}

/** The password of a `Basic` credential (any user name), or null. */
function basicPassword(value: string): string | null {
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/**
 * Decides whether a preview request may reach the port (see plugins/preview.ts for the rules).
 * Explicit credentials are judged first and refused when bad (401); a public port lets anyone
 * through; then the cookie; then the port's password (throttled).
 */
export class PreviewAccess {
  readonly #deps: AccessDeps;
  /** Cookie grants: `${sandbox}:${token id}` → still live. */
  readonly #tokenRows = new ExpiringCache<boolean>();
  /** `X-Corral-Token`: `${sandbox}:${port}:${sha256}` → the token's expiry (ms), or null when refused. */
  readonly #headerTokens = new ExpiringCache<{ id: string; expiresAt: string } | null>();
  /** Bearer credentials: sha256 → the caller, or 'invalid' (a bad Corral key/JWT). */
  readonly #bearers = new ExpiringCache<Auth | 'invalid' | null>();

  constructor(deps: AccessDeps) {
    this.#deps = deps;
  }

  /** The decision for one request. */
  async check(input: AccessRequest): Promise<AccessDecision> {
    const { req, url, row, port, settings } = input;
    const tokens = this.#deps.tokens;
    const check = { kind: 'port' as const, sandboxId: row.id, port };

    const bearer = await this.#bearer(req);
    const stripAuthorization =
      bearer !== null || (settings.passwordHash !== null && authorizationOf(req)?.scheme === 'basic');
    if (settings.public) return { kind: 'allow', via: 'public', stripAuthorization };

    const param = url.searchParams.get(TOKEN_PARAM);
    if (param !== null) {
      const token = await tokens.verify(param, check);
      if (!token) return deny('UNAUTHORIZED', { reason: 'invalid_token' });
      const granted = { id: token.id, expiresAt: token.expires_at };
      return { kind: 'allow', via: 'token', stripAuthorization, token: granted, portToken: granted };
    }
    const header = req.headers[TOKEN_HEADER];
    if (typeof header === 'string') {
      const live = await this.#headerToken(header, row.id, port);
      if (!live) return deny('UNAUTHORIZED', { reason: 'invalid_token' });
      return { kind: 'allow', via: 'token', stripAuthorization, portToken: live };
    }
    if (bearer === 'invalid') return deny('UNAUTHORIZED');
    if (bearer !== null) {
      if (bearer.workspaceId !== row.workspace_id) return deny('SANDBOX_NOT_FOUND', { id: row.id });
      if (!scopeAllows(bearer.scopes, PREVIEW_SCOPE))
        return deny('FORBIDDEN', { required_scope: PREVIEW_SCOPE });
      const role = bearer.resolved?.workspace.role ?? '';
      if (!roleAtLeast(role, 'developer')) return deny('FORBIDDEN', { required_role: 'developer' });
      return { kind: 'allow', via: 'bearer', stripAuthorization, auth: bearer };
    }
    const cookie = await this.#cookieGrant(req, row.id, port, settings);
    if (cookie === 'password') return { kind: 'allow', via: 'cookie', stripAuthorization };
    if (cookie !== null) return { kind: 'allow', via: 'cookie', stripAuthorization, portToken: cookie };
    if (settings.passwordHash !== null) {
      const basic = authorizationOf(req);
      const password = basic?.scheme === 'basic' ? basicPassword(basic.value) : null;
      if (password !== null) {
        const verdict = await this.checkPassword(input, password);
        if (verdict !== null) return verdict;
        return { kind: 'allow', via: 'password', stripAuthorization };
      }
      return { ...deny('UNAUTHORIZED', { reason: 'password_required' }, true), headers: BASIC_CHALLENGE };
    }
    return deny('UNAUTHORIZED');
  }

  /**
   * Checks a password for the port (throttled per sandbox, port and client IP): null when
   * right, else the refusal (401 wrong, 429 RATE_LIMITED with Retry-After while blocked).
   */
  async checkPassword(input: AccessRequest, password: string): Promise<Denied | null> {
    const { throttle } = this.#deps;
    const hash = input.settings.passwordHash;
    const wrong: Denied = {
      ...deny('UNAUTHORIZED', { reason: 'wrong_password' }, true),
      headers: BASIC_CHALLENGE,
    };
    if (hash === null || password.length > 1024) return wrong;
    if (throttle.knownRight(hash, password)) return null;
    let wait: number;
    try {
      wait = await throttle.attempt(input.row.id, input.port, input.clientIp);
    } catch (err) {
      // Never unthrottled guessing: without the store, unknown passwords are refused.
      throw new ApiError('CAPACITY_EXHAUSTED', { reason: 'throttle_unavailable' }, undefined, { cause: err });
    }
    if (wait > 0) {
      return {
        ...deny('RATE_LIMITED', { retry_after_seconds: wait }, true),
        headers: { 'retry-after': String(wait) },
      };
    }
    if (!(await verifyPassword(hash, password))) return wrong;
    throttle.rememberRight(hash, password);
    return null;
  }

  /** Forgets what was cached about `sandboxId` (its tokens were revoked, a port's settings changed). */
  forgetSandbox(sandboxId: string): void {
    const prefix = `${sandboxId}:`;
    this.#tokenRows.deletePrefix(prefix);
    this.#headerTokens.deletePrefix(prefix);
  }

  /** Forgets every cached credential (a key revoked, a member's role changed or removed). */
  forgetCredentials(): void {
    this.#tokenRows.clear();
    this.#headerTokens.clear();
    this.#bearers.clear();
  }

  /** The Corral caller of a `Bearer` header: an Auth, 'invalid' for a bad Corral key, null when not Corral's. */
  async #bearer(req: IncomingMessage): Promise<Auth | 'invalid' | null> {
    const credential = authorizationOf(req);
    if (credential?.scheme !== 'bearer') return null;
    const value = credential.value;
    const isKey = value.startsWith('crl_sk_');
    // A JWT Corral did not sign belongs to the app inside: it is forwarded untouched.
    if (!isKey && !looksLikeJwt(value)) return null;
    const key = sha256(value);
    const cached = this.#bearers.get(key);
    if (cached !== undefined) return cached;
    const epoch = this.#bearers.epoch;
    const { store, jwtSecret } = this.#deps;
    const auth = isKey
      ? ((await authenticateApiKey(store, value)) ?? 'invalid')
      : await authenticateJwt(store, jwtSecret, value);
    // A JWT is not trusted past its own expiry.
    const ttl =
      isKey || auth === null ? ACCESS_CACHE_MS : Math.min(ACCESS_CACHE_MS, jwtExpiry(value) - Date.now());
    if (ttl > 0) this.#bearers.set(key, auth, ttl, epoch);
    return auth;
  }

  /** `token`'s id and expiry when it is a live port token of this sandbox and port (cached ACCESS_CACHE_MS). */
  async #headerToken(
    token: string,
    sandboxId: string,
    port: number,
  ): Promise<{ id: string; expiresAt: string } | null> {
    const key = `${sandboxId}:${port}:${sha256(token)}`;
    const now = Date.now();
    let live = this.#headerTokens.get(key, now);
    if (live === undefined) {
      const epoch = this.#headerTokens.epoch;
      const row = await this.#deps.tokens.verify(token, { kind: 'port', sandboxId, port }, now);
      live = row ? { id: row.id, expiresAt: row.expires_at } : null;
      this.#headerTokens.set(key, live, ACCESS_CACHE_MS, epoch, now);
    }
    return live !== null && Date.parse(live.expiresAt) > now ? live : null;
  }

  /** What a valid preview cookie stands for: the port's password, or a live port token; else null. */
  async #cookieGrant(
    req: IncomingMessage,
    sandboxId: string,
    port: number,
    settings: PortSettings,
  ): Promise<'password' | { id: string; expiresAt: string } | null> {
    const value = previewCookieOf(req.headers.cookie);
    if (value === null) return null;
    const grant = decodePreviewCookie(this.#deps.signer, value, sandboxId, port);
    if (!grant) return null;
    if (grant.credential.startsWith('pw-')) {
      const right =
        settings.passwordHash !== null && passwordCredential(settings.passwordHash) === grant.credential;
      return right ? 'password' : null;
    }
    if (!(await this.#tokenLive(sandboxId, grant.credential))) return null;
    return { id: grant.credential, expiresAt: new Date(grant.expires * 1000).toISOString() };
  }

  /** True when token `id` is neither revoked nor expired (read at most every ACCESS_CACHE_MS). */
  async #tokenLive(sandboxId: string, id: string): Promise<boolean> {
    const key = `${sandboxId}:${id}`;
    const cached = this.#tokenRows.get(key);
    if (cached !== undefined) return cached;
    const epoch = this.#tokenRows.epoch;
    const live = await this.#deps.tokens.stillValid(sandboxId, id, 'port');
    this.#tokenRows.set(key, live, ACCESS_CACHE_MS, epoch);
    return live;
  }
}

/** The `exp` of a JWT (its signature already checked) in ms, or 0 when it has none. */
function jwtExpiry(jwt: string): number {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof payload?.exp === 'number' ? payload.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Asks API clients for Basic credentials on a protected port (browsers get the page instead). */
const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="corral preview", charset="UTF-8"' };
