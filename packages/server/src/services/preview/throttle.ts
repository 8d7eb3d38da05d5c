/** Wrong passwords allowed per (sandbox, port, client IP) in one window. */
export const PASSWORD_ATTEMPTS = 5;
/** The throttle window: 1 minute. */
export const PASSWORD_WINDOW_MS = 60_000;
/** Keys kept at most (oldest dropped first), so a flood of addresses cannot grow memory without bound. */
const MAX_KEYS = 10_000;

/**
 * Counts wrong preview passwords per key (`sandbox:port:ip`) in a fixed window: after
 * PASSWORD_ATTEMPTS failures the key is refused until its window ends. In memory, per process.
 */
export class PasswordThrottle {
  readonly #failures = new Map<string, { count: number; resetAt: number }>();

  /** Seconds to wait when `key` is blocked now, else 0. */
  retryAfter(key: string, nowMs = Date.now()): number {
    const entry = this.#failures.get(key);
    if (!entry || entry.resetAt <= nowMs) return 0;
    return entry.count >= PASSWORD_ATTEMPTS ? Math.ceil((entry.resetAt - nowMs) / 1000) : 0;
  }

  /** Records a wrong password for `key`. */
  fail(key: string, nowMs = Date.now()): void {
    const entry = this.#failures.get(key);
    if (entry && entry.resetAt > nowMs) {
      entry.count++;
      return;
    }
    this.#failures.delete(key);
    if (this.#failures.size >= MAX_KEYS) this.#prune(nowMs);
    this.#failures.set(key, { count: 1, resetAt: nowMs + PASSWORD_WINDOW_MS });
  }

  /** Forgets `key`'s failures (after a right password). */
  succeed(key: string): void {
    this.#failures.delete(key);
  }

  #prune(nowMs: number): void {
    for (const [key, entry] of this.#failures) if (entry.resetAt <= nowMs) this.#failures.delete(key);
    while (this.#failures.size >= MAX_KEYS) {
      const oldest = this.#failures.keys().next().value;
      if (oldest === undefined) break;
      this.#failures.delete(oldest);
    }
  }
}
