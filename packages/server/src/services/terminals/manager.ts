import { randomBytes } from 'node:crypto';
import type { Runtime } from '@corral/runtime';
import type { FastifyBaseLogger } from 'fastify';
import { TerminalSession } from './session.js';

/** Scrollback kept per session for reattaching clients (64 KiB). */
export const SCROLLBACK_BYTES = 64 * 1024;
/** A session with no client for this long is killed (15 minutes). */
export const DETACHED_SESSION_TTL_MS = 15 * 60_000;
/** Sessions one sandbox may hold at once. */
export const MAX_SESSIONS_PER_SANDBOX = 32;
/** Clients one session may have at once (observers included). */
export const MAX_CLIENTS_PER_SESSION = 16;
/** How often clients are pinged and detached sessions swept (30 s). */
const SWEEP_INTERVAL_MS = 30_000;

/** What the session manager needs. */
export interface TerminalSessionsDeps {
  /** Resolves the runtime lazily (the app may have none: then opening answers 503). */
  runtime: () => Runtime;
  /** The sandbox's secret env, merged under every shell. */
  envFor: (sandboxId: string) => Promise<Record<string, string>>;
  touch: (sandboxId: string) => void;
  log: FastifyBaseLogger;
  detachedTtlMs?: number;
}

/** How to start a shell. */
export interface OpenTerminal {
  cols: number;
  rows: number;
}

/**
 * The terminal sessions of every sandbox on this server: opens login shells as `user` with
 * the sandbox's env, finds them again for reattaching, lists and kills them, and kills those
 * left without a client for DETACHED_SESSION_TTL_MS. Sessions live in this process's memory.
 */
export class TerminalSessions {
  readonly #deps: TerminalSessionsDeps;
  readonly #bySandbox = new Map<string, Map<string, TerminalSession>>();
  readonly #timer: NodeJS.Timeout;
  readonly #ttlMs: number;

  constructor(deps: TerminalSessionsDeps) {
    this.#deps = deps;
    this.#ttlMs = deps.detachedTtlMs ?? DETACHED_SESSION_TTL_MS;
    this.#timer = setInterval(
      () => {
        this.heartbeat();
        this.sweep();
      },
      Math.min(SWEEP_INTERVAL_MS, this.#ttlMs),
    );
    this.#timer.unref();
  }

  /** Starts a login shell in sandbox `sandboxId`; null when the sandbox holds too many already. */
  async open(sandboxId: string, size: OpenTerminal): Promise<TerminalSession | null> {
    if (this.list(sandboxId).length >= MAX_SESSIONS_PER_SANDBOX) return null;
    const env = await this.#deps.envFor(sandboxId);
    const pty = await this.#deps.runtime().pty(sandboxId, {
      command: '/bin/bash',
      args: ['-l'],
      env: { ...env, TERM: 'xterm-256color' },
      cols: size.cols,
      rows: size.rows,
      user: 'user',
    });
    const session = new TerminalSession({
      id: `pty_${randomBytes(16).toString('base64url')}`,
      sandboxId,
      pty,
      cols: size.cols,
      rows: size.rows,
      scrollbackBytes: SCROLLBACK_BYTES,
      onActivity: () => this.#deps.touch(sandboxId),
      onEnd: (ended) => this.#forget(ended),
    });
    let sessions = this.#bySandbox.get(sandboxId);
    if (!sessions) {
      sessions = new Map();
      this.#bySandbox.set(sandboxId, sessions);
    }
    sessions.set(session.id, session);
    return session;
  }

  /** Session `sessionId` of sandbox `sandboxId`, or null. */
  get(sandboxId: string, sessionId: string): TerminalSession | null {
    return this.#bySandbox.get(sandboxId)?.get(sessionId) ?? null;
  }

  /** The live sessions of a sandbox, oldest first. */
  list(sandboxId: string): TerminalSession[] {
    return [...(this.#bySandbox.get(sandboxId)?.values() ?? [])];
  }

  /** Kills session `sessionId`; false when there is no such session. */
  kill(sandboxId: string, sessionId: string): boolean {
    const session = this.get(sandboxId, sessionId);
    if (!session) return false;
    this.#forget(session);
    session.kill();
    return true;
  }

  /** Pings every client; those that did not answer the previous ping are cut off. */
  heartbeat(): void {
    for (const sessions of this.#bySandbox.values()) {
      for (const session of sessions.values()) session.heartbeat();
    }
  }

  /** Kills the sessions that have had no client for the TTL (as of `nowMs`). */
  sweep(nowMs = Date.now()): void {
    for (const sessions of this.#bySandbox.values()) {
      for (const session of [...sessions.values()]) {
        const detachedAt = session.detachedAtMs;
        if (detachedAt !== null && nowMs - detachedAt >= this.#ttlMs) {
          this.#deps.log.info(
            { sandbox_id: session.sandboxId, session_id: session.id },
            'idle terminal killed',
          );
          this.kill(session.sandboxId, session.id);
        }
      }
    }
  }

  /** Kills every session (server shutdown). */
  closeAll(): void {
    clearInterval(this.#timer);
    for (const sessions of [...this.#bySandbox.values()]) {
      for (const session of [...sessions.values()]) this.kill(session.sandboxId, session.id);
    }
  }

  #forget(session: TerminalSession): void {
    const sessions = this.#bySandbox.get(session.sandboxId);
    if (!sessions) return;
    sessions.delete(session.id);
    if (sessions.size === 0) this.#bySandbox.delete(session.sandboxId);
  }
}
