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

describe('memory rate-limit store rings', () => {
  it("grows a key's ring past its first size up to the limit, wrapping exactly", async () => {
    const store = new MemoryRateLimitStore();
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) {
      expect((await store.hit('team', 1000, 60_000, t0 + i)).allowed).toBe(true);
    }
    expect(await store.hit('team', 1000, 60_000, t0 + 1_000)).toMatchObject({
      allowed: false,
      resetAtMs: t0 + 60_000,
    });
    // Hits then age out one by one, in order, across the ring's wrap-around.
    for (let i = 0; i < 50; i++) {
      const r = await store.hit('team', 1000, 60_000, t0 + 60_000 + i);
      expect(r).toMatchObject({ allowed: true, remaining: 0, resetAtMs: t0 + 60_000 + i + 1 });
    }
    await store.close();
  });
});
