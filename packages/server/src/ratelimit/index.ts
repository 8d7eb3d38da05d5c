import type { RateLimitStore } from './interface.js';
import { MemoryRateLimitStore } from './memory.js';
import { RedisRateLimitStore } from './redis.js';

export type { RateLimitResult, RateLimitStore } from './interface.js';
export { MemoryRateLimitStore } from './memory.js';
export { RedisRateLimitStore } from './redis.js';

/** What selects the rate-limit store: Redis when a URL is configured, memory otherwise. */
export interface RateLimitStoreOptions {
  redisUrl?: string | null | undefined;
}

/** The rate-limit store for this configuration. */
export function createRateLimitStore(options: RateLimitStoreOptions): RateLimitStore {
  return options.redisUrl ? new RedisRateLimitStore({ url: options.redisUrl }) : new MemoryRateLimitStore();
}
