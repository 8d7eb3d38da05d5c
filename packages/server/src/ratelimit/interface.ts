/**
 * Rate-limit stores: an exact sliding-window log. A hit at time `t` is admitted when fewer than
 * `limit` hits were admitted in `(t - windowMs, t]`; rejected hits are not recorded, so a client
 * that keeps retrying while throttled is admitted again as soon as its oldest hit ages out.
 */

/** The outcome of one hit, in the store's clock (the caller's `nowMs`, or the store's own). */
export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  /** Hits still admissible in the current window after this one. */
  remaining: number;
  /** When the window next frees capacity: the oldest admitted hit's time + windowMs. */
  resetAtMs: number;
  /** 0 when allowed; otherwise how long until a retry can be admitted (≥ 1). */
  retryAfterMs: number;
}

/** One backend of the rate limiter (memory, Redis). Every driver passes test/ratelimit/suite.ts. */
export interface RateLimitStore {
  /**
   * Checks and records one hit for `key` atomically. `nowMs` overrides the store's clock (tests
   * simulate time with it); callers must either always pass it or never pass it for a key.
   */
  hit(key: string, limit: number, windowMs: number, nowMs?: number): Promise<RateLimitResult>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
