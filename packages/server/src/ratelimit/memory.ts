import type { RateLimitResult, RateLimitStore } from './interface.js';

/** Options of the in-process store. */
export interface MemoryRateLimitStoreOptions {
  /** How often idle keys (no hit inside their window) are dropped; default one minute. */
  cleanupIntervalMs?: number;
}

/**
 * One key's log: a ring of the admitted hit times still in the window, oldest at `head`. It
 * never holds more than `limit` entries (admission needs only the oldest of the last `limit`
 * hits) and grows by doubling as hits arrive, so memory is O(min(limit, hits in the window))
 * and a hit is amortised O(1) (each entry is pushed and evicted once).
 */
interface KeyLog {
  times: Float64Array;
  head: number;
  size: number;
  windowMs: number;
}

/** First ring size of a key; rings double from here up to the key's limit. */
const INITIAL_CAPACITY = 16;

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
      if (log.size === capacity) resize(log, Math.min(limit, capacity * 2));
      log.times[(log.head + log.size) % log.times.length] = nowMs;
      log.size++;
    }
    const resetAtMs = (log.size > 0 ? log.times[log.head]! : nowMs) + windowMs;
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
    let log = this.#logs.get(key);
    if (!log) {
      log = {
        times: new Float64Array(Math.max(1, Math.min(limit, INITIAL_CAPACITY))),
        head: 0,
        size: 0,
        windowMs,
      };
      this.#logs.set(key, log);
    } else if (log.times.length > Math.max(1, limit)) {
      // The key's limit went down (plan change): keep the newest hits that fit. Dropped hits are
      // older than every kept one, so they would have left the window first: still exact.
      resize(log, Math.max(1, limit));
    }
    log.windowMs = windowMs;
    return log;
  }
}

/** Moves a log into a ring of `capacity` slots, keeping its newest `capacity` hits in order. */
function resize(log: KeyLog, capacity: number): void {
  const times = new Float64Array(capacity);
  const keep = Math.min(log.size, capacity);
  const old = log.times;
  for (let i = 0; i < keep; i++) {
    times[i] = old[(log.head + log.size - keep + i) % old.length]!;
  }
  log.times = times;
  log.head = 0;
  log.size = keep;
}
