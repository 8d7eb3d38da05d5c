/** Limits of the login guard: failures allowed per window, per email and per client IP. */
export interface LoginThrottleLimits {
  perEmail: number;
  perIp: number;
  windowMs: number;
}

/**
 * Defaults: 5 failures per email and 20 per IP in 15 minutes. The IP limit is higher because
 * many honest users can share one address (NAT, an office); the email limit is what stops
 * guessing one account's password.
 */
export const DEFAULT_LOGIN_LIMITS: LoginThrottleLimits = { perEmail: 5, perIp: 20, windowMs: 15 * 60_000 };

interface Window {
  failures: number;
  startedAt: number;
}

const MAX_TRACKED = 50_000;

/**
 * Counts failed logins in fixed windows that start at the first failure. In-process state: with
 * several control-plane replicas each one counts on its own (so the effective limit is N times
 * higher) — acceptable for a guard whose job is to make guessing slow, not impossible.
 */
export class LoginThrottle {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limits: LoginThrottleLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait before trying again, or 0 when a login attempt may proceed. */
  retryAfterSeconds(email: string, ip: string): number {
    return Math.max(
      this.blockedFor(`email:${email}`, this.limits.perEmail),
      this.blockedFor(`ip:${ip}`, this.limits.perIp),
    );
  }

  /** Records one failed attempt against both the email and the IP. */
  recordFailure(email: string, ip: string): void {
    this.bump(`email:${email}`);
    this.bump(`ip:${ip}`);
  }

  /** Forgets the email's failures after a successful login (the IP's stay counted). */
  recordSuccess(email: string): void {
    this.windows.delete(`email:${email}`);
  }

  private blockedFor(key: string, limit: number): number {
    const window = this.live(key);
    if (!window || window.failures < limit) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.limits.windowMs - this.now()) / 1000));
  }

  private bump(key: string): void {
    const window = this.live(key);
    if (window) {
      window.failures += 1;
      return;
    }
    if (this.windows.size >= MAX_TRACKED) this.prune();
    this.windows.set(key, { failures: 1, startedAt: this.now() });
  }

  private live(key: string): Window | undefined {
    const window = this.windows.get(key);
    if (window && this.now() - window.startedAt >= this.limits.windowMs) {
      this.windows.delete(key);
      return undefined;
    }
    return window;
  }

  private prune(): void {
    const now = this.now();
    for (const [key, window] of this.windows) {
      if (now - window.startedAt >= this.limits.windowMs) this.windows.delete(key);
    }
    // Still full of live windows (a flood of distinct emails): drop the oldest half.
    if (this.windows.size >= MAX_TRACKED) {
      let toDrop = Math.floor(this.windows.size / 2);
      for (const key of this.windows.keys()) {
        if (toDrop-- <= 0) break;
        this.windows.delete(key);
      }
    }
  }
}
