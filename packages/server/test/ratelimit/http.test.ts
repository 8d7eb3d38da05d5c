import type { LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { ConfigInput } from '../../src/config.js';
import { openStore, type Store } from '../../src/store/index.js';
import { type Account, asSession, bearer, createKey, expectError, registerAccount } from '../auth/helpers.js';
import { createTestDatabase, type TestDatabase, testConfig } from '../support/app.js';
import { freePort } from '../support/services.js';

/** An app on a fresh SQLite database with the given config; rate limiting is per key, not per database. */
async function startApp(overrides: Partial<ConfigInput>): Promise<{ app: App; close(): Promise<void> }> {
  const database: TestDatabase = await createTestDatabase('sqlite');
  const config = testConfig({ defaultPlan: 'free', ...overrides, ...database.overrides });
  const store: Store = openStore(config);
  await store.migrate();
  const app = await buildApp({ config, store, logger: pino({ level: 'silent' }), defaultMetrics: false });
  await app.ready();
  return {
    app,
    async close() {
      await app.close();
      await store.close();
      await database.drop();
    },
  };
}

function get(app: App, url: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers });
}

function expectRateLimitHeaders(response: LightMyRequestResponse, limit: number, remaining: number): void {
  expect(response.headers['x-ratelimit-limit']).toBe(String(limit));
  expect(response.headers['x-ratelimit-remaining']).toBe(String(remaining));
  const reset = Number(response.headers['x-ratelimit-reset']);
  const nowSeconds = Date.now() / 1000;
  expect(reset).toBeGreaterThan(nowSeconds);
  expect(reset).toBeLessThanOrEqual(Math.ceil(nowSeconds) + 61);
}

for (const driver of ['memory', 'redis'] as const) {
  describe(`rate limiting over HTTP [${driver} store]`, () => {
    let app: App;
    let close: () => Promise<void>;
    let account: Account;

    beforeAll(async () => {
      ({ app, close } = await startApp(driver === 'redis' ? { redisUrl: inject('redisUrl') } : {}));
      account = await registerAccount(app, 'rl');
    });
    afterAll(async () => {
      await close?.();
    });

    it('answers the 61st request of a minute on a free-plan key with 429 RATE_LIMITED and Retry-After', async () => {
      const { key } = await createKey(app, account);
      for (let i = 0; i < 60; i++) {
        const ok = await get(app, '/v1/auth/me', bearer(key));
        expect(ok.statusCode, ok.body).toBe(200);
        expectRateLimitHeaders(ok, 60, 59 - i);
      }
      const limited = await get(app, '/v1/auth/me', bearer(key));
      const details = expectError(limited, 429, 'RATE_LIMITED');
      expect(details).toMatchObject({ limit: 60, window_seconds: 60 });
      const retryAfter = Number(limited.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(details.retry_after_seconds).toBe(retryAfter);
      expectRateLimitHeaders(limited, 60, 0);
    });

    it('puts the headers on authenticated error responses too, and none on 401 or public routes', async () => {
      const { key } = await createKey(app, account);
      const notFound = await get(app, '/v1/workspaces/ws_doesnotexist', bearer(key));
      expect(notFound.statusCode).toBeGreaterThanOrEqual(400);
      expectRateLimitHeaders(notFound, 60, 59);
      const badInput = await app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: bearer(key),
        payload: { name: 7 },
      });
      expect(badInput.statusCode).toBe(400);
      expectRateLimitHeaders(badInput, 60, 58);
      const unauthenticated = await get(app, '/v1/auth/me', bearer('crl_sk_not_a_real_key'));
      expectError(unauthenticated, 401, 'UNAUTHORIZED');
      expect(unauthenticated.headers['x-ratelimit-limit']).toBeUndefined();
      const health = await get(app, '/healthz', {});
      expect(health.headers['x-ratelimit-limit']).toBeUndefined();
    });

    it('counts and labels requests stopped by a missing scope', async () => {
      const { key } = await createKey(app, account, { scopes: ['sandbox:read'] });
      const forbidden = await app.inject({
        method: 'POST',
        url: '/v1/workspaces',
        headers: bearer(key),
        payload: { name: 'x' },
      });
      expectError(forbidden, 403, 'FORBIDDEN');
      expectRateLimitHeaders(forbidden, 60, 59);
      const next = await get(app, '/v1/auth/me', bearer(key));
      expectRateLimitHeaders(next, 60, 58);
    });

    it('keeps two keys independent, and a session apart from keys', async () => {
      const first = await createKey(app, account);
      const second = await createKey(app, account);
      for (let i = 0; i < 60; i++) await get(app, '/v1/auth/me', bearer(first.key));
      expectError(await get(app, '/v1/auth/me', bearer(first.key)), 429, 'RATE_LIMITED');
      const other = await get(app, '/v1/auth/me', bearer(second.key));
      expect(other.statusCode).toBe(200);
      expectRateLimitHeaders(other, 60, 59);
      const session = await get(app, '/v1/auth/me', asSession(account));
      expect(session.statusCode).toBe(200);
      expect(Number(session.headers['x-ratelimit-remaining'])).toBeGreaterThan(0);
    });

    it("lets a JWT spend its key's budget", async () => {
      const { key } = await createKey(app, account);
      const tokenResponse = await app.inject({
        method: 'POST',
        url: '/v1/auth/token',
        payload: { api_key: key },
      });
      expect(tokenResponse.statusCode, tokenResponse.body).toBe(200);
      const { token } = tokenResponse.json();
      for (let i = 0; i < 30; i++) expect((await get(app, '/v1/auth/me', bearer(key))).statusCode).toBe(200);
      const viaJwt = await get(app, '/v1/auth/me', bearer(token));
      expect(viaJwt.statusCode).toBe(200);
      expectRateLimitHeaders(viaJwt, 60, 29);
      for (let i = 0; i < 29; i++)
        expect((await get(app, '/v1/auth/me', bearer(token))).statusCode).toBe(200);
      expectError(await get(app, '/v1/auth/me', bearer(key)), 429, 'RATE_LIMITED');
      expectError(await get(app, '/v1/auth/me', bearer(token)), 429, 'RATE_LIMITED');
    });

    it('admits exactly 60 of 1000 concurrent requests on the free plan', async () => {
      const { key } = await createKey(app, account);
      const responses = await Promise.all(
        Array.from({ length: 1000 }, () => get(app, '/v1/auth/me', bearer(key))),
      );
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200)).toHaveLength(60);
      expect(statuses.filter((s) => s === 429)).toHaveLength(940);
      for (const limited of responses.filter((r) => r.statusCode === 429)) {
        expect(limited.json().error.code).toBe('RATE_LIMITED');
        expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
    });

    it('follows the workspace plan: pro allows 300 a minute', async () => {
      const pro = await registerAccount(app, 'rl-pro');
      const { key } = await createKey(app, pro);
      expectRateLimitHeaders(await get(app, '/v1/auth/me', bearer(key)), 60, 59);
      const store = (app as unknown as { store: Store }).store;
      await store.db
        .updateTable('workspaces')
        .set({ plan: 'pro' })
        .where('id', '=', pro.workspaceId)
        .execute();
      const upgraded = await get(app, '/v1/auth/me', bearer(key));
      expect(upgraded.statusCode).toBe(200);
      expectRateLimitHeaders(upgraded, 300, 298);
      const responses = await Promise.all(
        Array.from({ length: 320 }, () => get(app, '/v1/auth/me', bearer(key))),
      );
      expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(298);
      expectError(responses.find((r) => r.statusCode === 429)!, 429, 'RATE_LIMITED');
    });

    it('counts rejections in /metrics', async () => {
      const metrics = await get(app, '/metrics', {});
      expect(metrics.body).toMatch(/corral_ratelimit_rejected_total\{plan="free"\} [1-9]/);
    });
  });
}

describe('rate limiting when Redis is down', () => {
  let app: App;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ app, close } = await startApp({ redisUrl: `redis://127.0.0.1:${await freePort()}` }));
  });
  afterAll(async () => {
    await close?.();
  });

  it('fails open: requests succeed without rate-limit headers and the error metric counts them', async () => {
    const account = await registerAccount(app, 'rl-down');
    const { key } = await createKey(app, account);
    for (let i = 0; i < 70; i++) {
      const response = await get(app, '/v1/auth/me', bearer(key));
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-limit']).toBeUndefined();
    }
    const metrics = await get(app, '/metrics', {});
    const failures = Number(/corral_ratelimit_errors_total (\d+)/.exec(metrics.body)?.[1]);
    expect(failures).toBeGreaterThanOrEqual(71);
  });
});
