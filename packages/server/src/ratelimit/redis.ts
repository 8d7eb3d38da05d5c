import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RateLimitResult, RateLimitStore } from './interface.js';

/**
 * Check-and-record in one script, so it is atomic across every replica sharing the Redis:
 * the log is a sorted set of admitted hits scored by time. ARGV[3] < 0 means "use Redis TIME",
 * one clock for all replicas; tests pass their own clock instead.
 * Returns {allowed, count after the hit, resetAtMs, nowMs}.
 */
const HIT_SCRIPT = `
-- Redis 3.2-4 replicate scripts verbatim unless told otherwise, and TIME makes this one
-- non-deterministic; from Redis 5 on, effects replication is the default and this is a no-op.
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count > limit then
  -- The limit went down (plan change): keep the newest 'limit' hits, the others age out first.
  redis.call('ZREMRANGEBYRANK', key, 0, count - limit - 1)
  count = limit
end
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4] .. now)
  redis.call('PEXPIRE', key, window)
  count = count + 1
  allowed = 1
end
local resetAt = now + window
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then resetAt = tonumber(oldest[2]) + window end
return {allowed, count, resetAt, now}
`;

type HitReply = [number, number, number, number];

interface ScriptedRedis extends Redis {
  corralRateLimitHit(
    key: string,
    limit: number,
    windowMs: number,
    nowMs: number,
    member: string,
  ): Promise<HitReply>;
}

/** Options of the Redis store. */
export interface RedisRateLimitStoreOptions {
  url: string;
  /** Prefix of every Redis key; default `corral:rl:`. */
  keyPrefix?: string;
  /**
   * A hit that Redis has not answered within this time fails; default 1 s. Not much lower: the
   * timer also fires when this process's event loop is the slow part (seen: at 250 ms, a burst
   * of 1000 requests through app.inject on 2 cores failed open 228 hits; 1 s: none).
   */
  commandTimeoutMs?: number;
}

/**
 * Exact sliding-window log in Redis (one sorted set per key, expiring with its window), shared
 * by every replica of the control plane. Script loading and EVALSHA → EVAL fallback are
 * ioredis' `defineCommand`.
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly #redis: ScriptedRedis;
  readonly #keyPrefix: string;
  // Members must be unique per hit: this process's random id and a counter (the score is the time).
  readonly #memberPrefix = randomBytes(6).toString('base64url');
  #sequence = 0;

  constructor(options: RedisRateLimitStoreOptions) {
    this.#keyPrefix = options.keyPrefix ?? 'corral:rl:';
    this.#redis = new Redis(options.url, {
      commandTimeout: options.commandTimeoutMs ?? 1_000,
      maxRetriesPerRequest: 1,
      // Keep reconnecting quietly; callers decide what an outage means (see plugins/rate-limit.ts).
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    }) as ScriptedRedis;
    this.#redis.on('error', () => {
      // Connection errors surface on the hits themselves; without a listener ioredis logs each one.
    });
    this.#redis.defineCommand('corralRateLimitHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  async hit(key: string, limit: number, windowMs: number, nowMs?: number): Promise<RateLimitResult> {
    const status = this.#redis.status;
    // While Redis is known to be down, fail at once instead of queueing every request behind it.
    if (status === 'reconnecting' || status === 'end' || status === 'close') {
      throw new Error(`redis rate-limit store unavailable (${status})`);
    }
    this.#sequence = (this.#sequence + 1) % Number.MAX_SAFE_INTEGER;
    const member = `${this.#memberPrefix}:${this.#sequence}:`;
    const [allowed, count, resetAtMs, now] = await this.#redis.corralRateLimitHit(
      this.#keyPrefix + key,
      limit,
      windowMs,
      nowMs ?? -1,
      member,
    );
    return {
      allowed: allowed === 1,
      limit,
      remaining: Math.max(0, limit - count),
      resetAtMs,
      retryAfterMs: allowed === 1 ? 0 : Math.max(1, resetAtMs - now),
    };
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
