import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Auth, Role } from './access.js';
import {
  type CallerLogin,
  type CallerState,
  callerLoginOf,
  callerName,
  callerStates,
} from './caller-checks.js';
import type { SandboxTokens, TokenState } from './sandbox-tokens.js';
import { type KeyLogin, liveKeyLogins } from './ssh/keys.js';

/** WebSocket close code for a connection whose credential ended (1008: policy violation). */
export const TOKEN_CLOSE_CODE = 1008;
/** How often open connections' credentials are checked again (by default). */
export const DEFAULT_CHECK_INTERVAL_MS = 15_000;
/** setTimeout's longest delay (~24.8 days); tokens live at most a day, but stay safe. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A sandbox token that opened a connection. */
export interface TrackedToken {
  id: string;
  expiresAt: string;
}

/** A registered SSH key that opened a connection to a sandbox. */
export interface TrackedKey {
  /** The `ssh_keys` id. */
  id: string;
  sandboxId: string;
}

/** A connection opened by an API key, a JWT or a dashboard session (see `trackCaller`). */
export interface TrackedCaller {
  auth: Auth;
  sandboxId: string;
  /** The role the connection's route needs in the sandbox's workspace (developer for terminals). */
  minRole: Role;
}

/** Ends one connection; `reason` is short, shown to the client, and never holds a secret. */
export type CloseConnection = (reason: string) => void;

/** What the service needs: the batch checks, and a logger. */
export interface TokenConnectionsDeps {
  tokens: Pick<SandboxTokens, 'states'>;
  /** Of `logins`, those still allowed (as `${keyId} ${sandboxId}`). */
  liveKeys(logins: readonly KeyLogin[]): Promise<Set<string>>;
  /** The state of each caller login, by `callerName` (none tracked without it). */
  callers?(logins: readonly CallerLogin[]): Promise<Map<string, CallerState>>;
  log: FastifyBaseLogger;
  checkIntervalMs?: number;
}

/** The connections of one credential, each with the check generation it was tracked in. */
interface Group {
  closers: Map<CloseConnection, number>;
  expiry?: NodeJS.Timeout;
}

const TOKEN_REASONS: Record<Exclude<TokenState, 'live'>, string> = {
  revoked: 'token revoked',
  expired: 'token expired',
  refused: 'token no longer valid',
};

const CALLER_REASONS: Record<Exclude<CallerState, 'live'>, string> = {
  revoked: 'credential revoked',
  expired: 'credential expired',
  denied: 'no longer allowed',
};

/**
 * The open connections (terminal WebSockets, SSH connections …) opened with a sandbox token or
 * a registered SSH key, closed when that credential ends: at once on `revoked` / `keyDeleted`
 * (this server's routes), at the token's expiry, and by a periodic re-check — one batch query
 * for every tracked credential — that catches what happened elsewhere (a revoke on another
 * replica, a creator or key owner no longer a developer, a revoked minting key, a deleted
 * sandbox). Timers are unref'd and run only while something is tracked.
 *
 * Connections opened by a caller — an API key, a JWT, a dashboard session (`trackCaller`) —
 * are closed the same way when the key is revoked or expires, the session ends (logout,
 * expiry), the user is no longer a member of the sandbox's workspace with the route's role, or
 * the sandbox or workspace is deleted: at once when a route of this server calls `recheck()`,
 * otherwise by the periodic check.
 */
export class TokenConnections {
  readonly #deps: TokenConnectionsDeps;
  readonly #tokens = new Map<string, Group>();
  /** By `${keyId} ${sandboxId}`. */
  readonly #keys = new Map<string, Group & { login: KeyLogin }>();
  /** By `callerName`. */
  readonly #callers = new Map<string, Group & { login: CallerLogin }>();
  #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<number> | null = null;
  #again: Promise<number> | null = null;
  #generation = 0;
  #stopped = false;

  constructor(deps: TokenConnectionsDeps) {
    this.#deps = deps;
    this.#intervalMs = deps.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  }

  /** Connections tracked now. */
  get size(): number {
    let count = 0;
    for (const group of this.#tokens.values()) count += group.closers.size;
    for (const group of this.#keys.values()) count += group.closers.size;
    for (const group of this.#callers.values()) count += group.closers.size;
    return count;
  }

  /** Tracks a connection opened with `token` until the returned untrack is called. */
  track(token: TrackedToken, close: CloseConnection): () => void {
    let group = this.#tokens.get(token.id);
    if (!group) {
      const created: Group = { closers: new Map() };
      const delay = Math.min(MAX_TIMER_MS, Math.max(0, Date.parse(token.expiresAt) - Date.now()));
      created.expiry = setTimeout(() => this.#end(this.#tokens, token.id, TOKEN_REASONS.expired), delay);
      created.expiry.unref();
      this.#tokens.set(token.id, created);
      group = created;
    }
    return this.#add(this.#tokens, token.id, group, close);
  }

  /** Tracks a connection logged in with a registered key until the returned untrack is called. */
  trackKey(key: TrackedKey, close: CloseConnection): () => void {
    const name = `${key.id} ${key.sandboxId}`;
    let group = this.#keys.get(name);
    if (!group) {
      group = { closers: new Map(), login: { keyId: key.id, sandboxId: key.sandboxId } };
      this.#keys.set(name, group);
    }
    return this.#add(this.#keys, name, group, close);
  }

  /**
   * Tracks a connection opened by `caller.auth` (API key, JWT or session) until the returned
   * untrack is called. A JWT is tracked by the key behind it, NOT by its own `exp`: access JWTs
   * live 15 minutes and are meant to open connections (browsers pass them as `?token=`), so a
   * connection lives on while the key that signed it stays valid and its user keeps the role —
   * as Kubernetes exec streams and Cloudflare tunnels do. A session's connection ends with the
   * session (logout, expiry).
   */
  trackCaller(caller: TrackedCaller, close: CloseConnection): () => void {
    const login = callerLoginOf(caller.auth, caller.sandboxId, caller.minRole);
    const name = callerName(login);
    let group = this.#callers.get(name);
    if (!group) {
      group = { closers: new Map(), login };
      this.#callers.set(name, group);
    }
    return this.#add(this.#callers, name, group, close);
  }

  /**
   * Something changed here (a key revoked, a member's role changed or removed, a logout, a
   * sandbox deleted): checks every tracked credential again, in a check that starts after this
   * call (one already running may have read the store before the change). Returns how many
   * connections it closed.
   */
  recheck(): Promise<number> {
    if (!this.#checking) return this.check();
    this.#again ??= this.#checking.then(() => {
      this.#again = null;
      return this.check();
    });
    return this.#again;
  }

  /** Token `tokenId` was revoked here: closes its connections; returns how many. */
  revoked(tokenId: string): number {
    return this.#end(this.#tokens, tokenId, TOKEN_REASONS.revoked);
  }

  /** Registered key `keyId` was deleted here: closes its connections; returns how many. */
  keyDeleted(keyId: string): number {
    let closed = 0;
    for (const [name, group] of [...this.#keys]) {
      if (group.login.keyId === keyId) closed += this.#end(this.#keys, name, 'ssh key removed');
    }
    return closed;
  }

  /** Changes the re-check interval (tests use a short one); restarts the timer. */
  checkEvery(ms: number): void {
    this.#intervalMs = Math.max(10, ms);
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    this.#schedule();
  }

  /**
   * Checks every tracked credential now (one batch query each for tokens and keys) and closes
   * the connections of those that ended; returns how many were closed. A failed query closes
   * nothing (it is logged; the next check tries again). Concurrent calls share one check.
   */
  check(): Promise<number> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  /** Stops the timers (the app is closing); connections are not closed by this. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const group of this.#tokens.values()) clearTimeout(group.expiry);
  }

  async #check(): Promise<number> {
    const generation = ++this.#generation;
    const tokenIds = [...this.#tokens.keys()];
    const logins = [...this.#keys.values()].map((group) => group.login);
    const callers = [...this.#callers.values()].map((group) => group.login);
    let closed = 0;
    try {
      if (tokenIds.length > 0) {
        const states = await this.#deps.tokens.states(tokenIds);
        for (const [id, state] of states) {
          if (state !== 'live') closed += this.#end(this.#tokens, id, TOKEN_REASONS[state], generation);
        }
      }
      if (logins.length > 0) {
        const live = await this.#deps.liveKeys(logins);
        for (const { keyId, sandboxId } of logins) {
          const name = `${keyId} ${sandboxId}`;
          if (!live.has(name))
            closed += this.#end(this.#keys, name, 'ssh key removed or access revoked', generation);
        }
      }
      if (callers.length > 0 && this.#deps.callers) {
        const states = await this.#deps.callers(callers);
        for (const [name, state] of states) {
          if (state !== 'live') closed += this.#end(this.#callers, name, CALLER_REASONS[state], generation);
        }
      }
    } catch (err) {
      this.#deps.log.warn({ err }, 'could not re-check the credentials of open connections');
    }
    if (closed > 0) this.#deps.log.info({ closed }, 'closed connections whose credential ended');
    return closed;
  }

  #add<G extends Group>(groups: Map<string, G>, name: string, group: G, close: CloseConnection): () => void {
    group.closers.set(close, this.#generation);
    this.#schedule();
    return () => {
      if (!group.closers.delete(close) || group.closers.size > 0) return;
      clearTimeout(group.expiry);
      if (groups.get(name) === group) groups.delete(name);
      this.#idle();
    };
  }

  /**
   * Closes the connections of one credential (only those tracked before check `generation`
   * started, when given: a login that raced the check is left to the next one).
   */
  #end<G extends Group>(groups: Map<string, G>, name: string, reason: string, generation?: number): number {
    const group = groups.get(name);
    if (!group) return 0;
    const closers = [...group.closers].filter(([, since]) => generation === undefined || since < generation);
    for (const [close] of closers) group.closers.delete(close);
    if (group.closers.size === 0) {
      clearTimeout(group.expiry);
      groups.delete(name);
      this.#idle();
    }
    for (const [close] of closers) {
      try {
        close(reason);
      } catch (err) {
        this.#deps.log.debug({ err }, 'closing a connection failed');
      }
    }
    return closers.length;
  }

  /** Nothing tracked: the periodic check stops until something is. */
  #idle(): void {
    if (this.#tracking() || !this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }

  #tracking(): boolean {
    return this.#tokens.size > 0 || this.#keys.size > 0 || this.#callers.size > 0;
  }

  #schedule(): void {
    if (this.#timer || this.#stopped || !this.#tracking()) return;
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }
}

/** The app's TokenConnections (its timers stopped when the app closes). */
export function createTokenConnections(app: FastifyInstance): TokenConnections {
  const connections = new TokenConnections({
    tokens: app.sandboxTokens,
    liveKeys: (logins) => liveKeyLogins(app.store.db, logins),
    callers: (logins) => callerStates(app.store.db, logins),
    log: app.log,
  });
  app.addHook('onClose', async () => connections.stop());
  return connections;
}
