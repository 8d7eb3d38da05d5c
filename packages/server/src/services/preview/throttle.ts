import { createHash } from 'node:crypto';
import type { RateLimitStore } from '../../ratelimit/index.js';
import { ExpiringCache } from './cache.js';

/** Password attempts allowed per (sandbox, port, client IP) in one window. */
export const PASSWORD_ATTEMPTS = 5;
/** The throttle window: 1 minute. */
export const PASSWORD_WINDOW_MS = 60_000;
/** How long a password found right is taken without the throttle or argon2 again: 10 minutes. */
const KNOWN_RIGHT_MS = 10 * 60_000;

/** The rate-limit key of one (sandbox, port, client IP). */
function keyOf(sandboxId: string, port: number, clientIp: string): string {
  return `preview-password:${sandboxId}:${port}:${clientIp}`;
}

/**
 * Throttles preview password attempts on `app.rateLimitStore` (Redis when configured, so the
 * budget holds across replicas): each attempt checked against the port's hash is one hit, and
 * after PASSWORD_ATTEMPTS in a sliding minute the next is refused — right or wrong, so a
 * guesser learns nothing while blocked — until the oldest leaves the window.
 *
 * The store records every admitted hit and cannot tell "blocked?" without recording one, so
 * right passwords would use the budget up too (an API client sending `Basic` on every request
 * would be blocked after five). Hence a password found right is remembered here for a while
 * (a salted fingerprint of hash and password; a new hash never matches) and taken without a
 * hit: only unknown passwords, which are what a guesser sends, use the budget.
 */
export class PasswordThrottle {
  readonly #store: RateLimitStore;
  readonly #right = new ExpiringCache<true>(1000);

  constructor(store: RateLimitStore) {
    this.#store = store;
  }

  /** True when `password` was found right for `passwordHash` lately (no attempt is used). */
  knownRight(passwordHash: string, password: string): boolean {
    return this.#right.get(fingerprint(passwordHash, password)) === true;
  }

  /** Remembers that `password` is right for `passwordHash`. */
  rememberRight(passwordHash: string, password: string): void {
    this.#right.set(fingerprint(passwordHash, password), true, KNOWN_RIGHT_MS);
  }

  /**
   * Uses one attempt of (sandbox, port, client IP): 0 when admitted, else the seconds to wait
   * (≥ 1). Rejects when the store fails (the caller refuses: never unthrottled guessing).
   */
  async attempt(sandboxId: string, port: number, clientIp: string): Promise<number> {
    const result = await this.#store.hit(
      keyOf(sandboxId, port, clientIp),
      PASSWORD_ATTEMPTS,
      PASSWORD_WINDOW_MS,
    );
    return result.allowed ? 0 : Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  }
}

/** SHA-256 of the argon2 hash (salted, per port and password) and the password. */
function fingerprint(passwordHash: string, password: string): string {
  return createHash('sha256').update(passwordHash).update('\0').update(password).digest('base64url');
}
