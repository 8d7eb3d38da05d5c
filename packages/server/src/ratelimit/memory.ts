import type { RateLimitResult, RateLimitStore } from './interface.js';

/** Options of the in-process store. */
export interface MemoryRateLimitStoreOptions {
  /** How often idle keys (no hit inside their window) are dropped; default one minute. */
  cleanupIntervalMs?: number;
}

/**
 * One key's log: a ring of the last `limit` admitted hit times, oldest at `head`. Admission
 * only needs the oldest of the last `limit` hits, so memory is O(limit) and a hit is amortised
 * O(1) (each entry is pushed and evicted once).
 */
interface KeyLog {
  times: Float64Array;
  head: number;
  size: number;
  windowMs: number;
}

/**
 * Exact sliding-window log kept in this process. Right for one replica; several replicas need
 * the Redis store so that they share one budget per key.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly #logs = new Map<string, KeyLog>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    this.#timer = setInterval(() => this.sweep(Date.now()), options.cleanupIntervalMs ?? 60_000);
    // The sweep is housekeeping: it must never keep the process alive on its own.
    this.#timer.unref();
  }

  async hit(key: string, limit: number, windowMs: number, nowMs?: number): Promise<RateLimitResult> {
    return this.hitSync(key, limit, windowMs, nowMs ?? Date.now());
  }

  /** The synchronous core of `hit`: no await between check and record, hence exact under concurrency. */
  hitSync(key: string, limit: number, windowMs: number, nowMs: number): RateLimitResult {
    const log = this.#logFor(key, limit, windowMs);
    const { times } = log;
    const capacity = times.length;
    // Evict hits that left the window (t <= now - window), oldest first.
    while (log.size > 0 && times[log.head]! <= nowMs - windowMs) {
      log.head = (log.head + 1) % capacity;
      log.size--;
    }
    const allowed = log.size < limit;
    if (allowed) {
      times[(log.head + log.size) % capacity] = nowMs;
      log.size++;
    }
    const resetAtMs = (log.size > 0 ? times[log.head]! : nowMs) + windowMs;
    return {
      allowed,
      limit,
      remaining: limit - log.size,
      resetAtMs,
      retryAfterMs: allowed ? 0 : Math.max(1, resetAtMs - nowMs),
    };
  }

  /** Drops every key whose newest hit has left its window; returns how many were dropped. */
  sweep(nowMs: number): number {
    let dropped = 0;
    for (const [key, log] of this.#logs) {
      const newest = log.size === 0 ? -Infinity : log.times[(log.head + log.size - 1) % log.times.length]!;
      if (newest <= nowMs - log.windowMs) {
        this.#logs.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.#logs.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#logs.clear();
  }

  #logFor(key: string, limit: number, windowMs: number): KeyLog {
    const capacity = Math.max(1, limit);
    let log = this.#logs.get(key);
    if (!log) {
      log = { times: new Float64Array(capacity), head: 0, size: 0, windowMs };
      this.#logs.set(key, log);
    } else if (log.times.length !== capacity) {
      // The key's limit changed (plan change): keep the newest hits that fit. Dropped hits are
      // older than every kept one, so they would have left the window first: still exact.
      const times = new Float64Array(capacity);
      const keep = Math.min(log.size, capacity);
      for (let i = 0; i < keep; i++) {
        times[i] = log.times[(log.head + log.size - keep + i) % log.times.length]!;
      }
      log.times = times;
      log.head = 0;
      log.size = keep;
    }
    log.windowMs = windowMs;
    return log;
  }
}
