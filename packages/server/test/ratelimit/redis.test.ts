import { describe, expect, inject, it } from 'vitest';
import { RedisRateLimitStore } from '../../src/ratelimit/redis.js';
import { freePort } from '../support/services.js';
import { rateLimitStoreSuite } from './suite.js';

rateLimitStoreSuite('redis', () => new RedisRateLimitStore({ url: inject('redisUrl') }));

describe('redis rate-limit store outage', () => {
  it('fails fast (rejects, never hangs) when Redis is unreachable', async () => {
    const port = await freePort();
    const store = new RedisRateLimitStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200 });
    const started = Date.now();
    await expect(store.hit('down', 60, 60_000)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2_000);
    // Once the first failure is seen the store knows Redis is down and fails at once.
    const again = Date.now();
    await expect(store.hit('down', 60, 60_000)).rejects.toThrow();
    expect(Date.now() - again).toBeLessThan(500);
    await store.close();
  });
});
