import { describe, expect, it } from 'vitest';
import { MemoryRateLimitStore } from '../../src/ratelimit/memory.js';
import { rateLimitStoreSuite } from './suite.js';

rateLimitStoreSuite('memory', () => new MemoryRateLimitStore());

describe('memory rate-limit store housekeeping', () => {
  it('sweeps keys whose hits have all left their window, and keeps live ones', async () => {
    const store = new MemoryRateLimitStore();
    const t0 = Date.now();
    await store.hit('idle', 5, 1_000, t0);
    await store.hit('live', 5, 60_000, t0);
    expect(store.size).toBe(2);
    expect(store.sweep(t0 + 1_000)).toBe(1);
    expect(store.size).toBe(1);
    expect((await store.hit('live', 5, 60_000, t0 + 1_000)).remaining).toBe(3);
    await store.close();
  });
});
