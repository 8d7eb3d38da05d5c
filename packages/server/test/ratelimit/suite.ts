import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimitStore } from '../../src/ratelimit/interface.js';

const MINUTE_MS = 60_000;

/**
 * The contract every rate-limit store passes unchanged. Time is simulated through `nowMs`
 * (never slept), starting near the real clock so that real-time expiry (Redis TTLs, memory
 * sweeps) agrees with it.
 */
export function rateLimitStoreSuite(
  driver: string,
  create: () => Promise<RateLimitStore> | RateLimitStore,
): void {
  describe(`rate-limit store contract: ${driver}`, () => {
    let store: RateLimitStore;
    let keySerial = 0;
    // A fresh key per test: tests share one store (and one Redis) and must not see each other.
    const freshKey = (label: string) => `suite:${label}:${process.pid}:${Date.now()}:${keySerial++}`;
    const t0 = Date.now();

    beforeAll(async () => {
      store = await create();
    });
    afterAll(async () => {
      await store?.close();
    });

    it('admits exactly `limit` hits in a window, counting remaining down', async () => {
      const key = freshKey('exact');
      for (let i = 0; i < 60; i++) {
        const r = await store.hit(key, 60, MINUTE_MS, t0 + i * 100);
        expect(r).toMatchObject({ allowed: true, limit: 60, remaining: 59 - i, retryAfterMs: 0 });
      }
      const denied = await store.hit(key, 60, MINUTE_MS, t0 + 6_000);
      expect(denied).toMatchObject({ allowed: false, limit: 60, remaining: 0 });
      // The first hit (t0) frees the first slot at t0 + one minute.
      expect(denied.resetAtMs).toBe(t0 + MINUTE_MS);
      expect(denied.retryAfterMs).toBe(t0 + MINUTE_MS - (t0 + 6_000));
    });

    it('slides: capacity comes back hit by hit as the oldest hits leave the window', async () => {
      const key = freshKey('slide');
      // Three hits at t0, t0+10s, t0+20s against a limit of 3.
      for (const offset of [0, 10_000, 20_000]) {
        expect((await store.hit(key, 3, MINUTE_MS, t0 + offset)).allowed).toBe(true);
      }
      expect((await store.hit(key, 3, MINUTE_MS, t0 + 59_999)).allowed).toBe(false);
      // At exactly t0 + 60s the t0 hit is out of (now - window, now]: one slot, not three.
      const atReset = await store.hit(key, 3, MINUTE_MS, t0 + MINUTE_MS);
      expect(atReset).toMatchObject({ allowed: true, remaining: 0 });
      expect(atReset.resetAtMs).toBe(t0 + 10_000 + MINUTE_MS);
      const stillFull = await store.hit(key, 3, MINUTE_MS, t0 + 65_000);
      expect(stillFull).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 5_000 });
      // A fixed window would have reset everything at t0+60s; a sliding one frees t0+10s next.
      expect((await store.hit(key, 3, MINUTE_MS, t0 + 70_000)).allowed).toBe(true);
      // Long after, the whole budget is back.
      const later = await store.hit(key, 3, MINUTE_MS, t0 + 10 * MINUTE_MS);
      expect(later).toMatchObject({ allowed: true, remaining: 2 });
    });

    it('does not count rejected hits against the budget', async () => {
      const key = freshKey('rejected');
      expect((await store.hit(key, 1, MINUTE_MS, t0)).allowed).toBe(true);
      for (let i = 1; i <= 20; i++) {
        expect((await store.hit(key, 1, MINUTE_MS, t0 + i * 1_000)).allowed).toBe(false);
      }
      expect((await store.hit(key, 1, MINUTE_MS, t0 + MINUTE_MS)).allowed).toBe(true);
    });

    it('keeps separate keys independent', async () => {
      const a = freshKey('a');
      const b = freshKey('b');
      for (let i = 0; i < 5; i++) await store.hit(a, 5, MINUTE_MS, t0 + i);
      expect((await store.hit(a, 5, MINUTE_MS, t0 + 10)).allowed).toBe(false);
      const first = await store.hit(b, 5, MINUTE_MS, t0 + 10);
      expect(first).toMatchObject({ allowed: true, remaining: 4 });
    });

    it('admits exactly 60 of 1000 concurrent hits', async () => {
      const key = freshKey('concurrent');
      const results = await Promise.all(Array.from({ length: 1000 }, () => store.hit(key, 60, MINUTE_MS)));
      expect(results.filter((r) => r.allowed)).toHaveLength(60);
      const remaining = results.filter((r) => r.allowed).map((r) => r.remaining);
      // Each admitted hit saw a distinct count: 59, 58, …, 0.
      expect(new Set(remaining).size).toBe(60);
      expect(Math.min(...remaining)).toBe(0);
    });

    it('gives sane reset and retry-after values on the store clock', async () => {
      const key = freshKey('clock');
      const before = Date.now();
      const first = await store.hit(key, 2, MINUTE_MS);
      const after = Date.now();
      expect(first.resetAtMs).toBeGreaterThanOrEqual(before + MINUTE_MS - 5);
      expect(first.resetAtMs).toBeLessThanOrEqual(after + MINUTE_MS + 5);
      await store.hit(key, 2, MINUTE_MS);
      const denied = await store.hit(key, 2, MINUTE_MS);
      expect(denied.allowed).toBe(false);
      expect(denied.retryAfterMs).toBeGreaterThanOrEqual(1);
      expect(denied.retryAfterMs).toBeLessThanOrEqual(MINUTE_MS);
      expect(denied.resetAtMs).toBe(first.resetAtMs);
    });

    it('follows a limit change on the same key (plan upgrade and downgrade)', async () => {
      const key = freshKey('plan');
      for (let i = 0; i < 60; i++) await store.hit(key, 60, MINUTE_MS, t0 + i);
      expect((await store.hit(key, 60, MINUTE_MS, t0 + 100)).allowed).toBe(false);
      const upgraded = await store.hit(key, 300, MINUTE_MS, t0 + 200);
      expect(upgraded).toMatchObject({ allowed: true, limit: 300, remaining: 239 });
      // Down to 10: 61 hits in the window, so nothing more until all but 9 have aged out.
      const downgraded = await store.hit(key, 10, MINUTE_MS, t0 + 300);
      expect(downgraded).toMatchObject({ allowed: false, limit: 10, remaining: 0 });
      // t0+51 … t0+59 and t0+200 are still in the window at t0+60 050: ten, so still full.
      expect((await store.hit(key, 10, MINUTE_MS, t0 + MINUTE_MS + 50)).allowed).toBe(false);
      expect((await store.hit(key, 10, MINUTE_MS, t0 + MINUTE_MS + 100)).allowed).toBe(true);
    });

    it('rejects everything at limit 0 with a retry-after of one window', async () => {
      const r = await store.hit(freshKey('zero'), 0, MINUTE_MS, t0);
      expect(r).toMatchObject({
        allowed: false,
        remaining: 0,
        resetAtMs: t0 + MINUTE_MS,
        retryAfterMs: MINUTE_MS,
      });
    });
  });
}
