import { randomInt } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { ConfigInput } from '../../src/config.js';
import { openStore } from '../../src/store/index.js';
import { bearer, createKey, expectError, registerAccount, uniqueEmail } from '../auth/helpers.js';
import { createTestDatabase, testConfig } from '../support/app.js';

/** A client IP of its own per test, so runs sharing one Redis never share a budget. */
function randomIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

function post(
  app: App,
  url: string,
  ip: string,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, remoteAddress: ip, payload, headers });
}

function expectLimited(response: LightMyRequestResponse, limit: number, windowSeconds: number): void {
  const details = expectError(response, 429, 'RATE_LIMITED');
  expect(details).toMatchObject({ limit, window_seconds: windowSeconds });
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(details.retry_after_seconds).toBe(retryAfter);
}

for (const driver of ['memory', 'redis'] as const) {
  describe(`per-IP limits on the public auth routes [${driver} store]`, () => {
    let app: App;
    let close: () => Promise<void>;

    beforeAll(async () => {
      const database = await createTestDatabase('sqlite');
      const overrides: Partial<ConfigInput> = {
        registerLimitPerHour: 3,
        loginLimitPerMinute: 2,
        tokenLimitPerMinute: 2,
        ...(driver === 'redis' ? { redisUrl: inject('redisUrl') } : {}),
      };
      const config = testConfig({ ...overrides, ...database.overrides });
      const store = openStore(config);
      await store.migrate();
      app = await buildApp({ config, store, logger: pino({ level: 'silent' }), defaultMetrics: false });
      await app.ready();
      close = async () => {
        await app.close();
        await store.close();
        await database.drop();
      };
    });
    afterAll(async () => {
      await close?.();
    });

    const register = (ip: string, headers: Record<string, string> = {}) =>
      post(
        app,
        '/v1/auth/register',
        ip,
        { email: uniqueEmail('iplimit'), password: 'correct horse battery' },
        headers,
      );

    it('allows 3 registrations an hour from one IP, then 429 with Retry-After; other IPs are unaffected', async () => {
      const ip = randomIp();
      for (let i = 0; i < 3; i++) expect((await register(ip)).statusCode).toBe(201);
      expectLimited(await register(ip), 3, 3600);
      expect((await register(randomIp())).statusCode).toBe(201);
    });

    it('counts registrations carrying valid credentials too', async () => {
      // From an address of its own: other suites sharing the test Redis register from 127.0.0.1,
      // and this app allows only 3 registrations an hour per address.
      const account = await registerAccount(app, 'iplimit-owner', undefined, randomIp());
      const { key } = await createKey(app, account);
      const ip = randomIp();
      for (let i = 0; i < 3; i++) expect((await register(ip, bearer(key))).statusCode).toBe(201);
      expectLimited(await register(ip, bearer(key)), 3, 3600);
    });

    it('limits token exchanges per IP whatever their outcome', async () => {
      const ip = randomIp();
      for (let i = 0; i < 2; i++) {
        expectError(await post(app, '/v1/auth/token', ip, { api_key: 'crl_sk_nope' }), 401, 'UNAUTHORIZED');
      }
      expectLimited(await post(app, '/v1/auth/token', ip, { api_key: 'crl_sk_nope' }), 2, 60);
    });

    it('limits login attempts per IP', async () => {
      const ip = randomIp();
      const attempt = () =>
        post(app, '/v1/auth/login', ip, { email: uniqueEmail('nobody'), password: 'wrong password x' });
      for (let i = 0; i < 2; i++) expectError(await attempt(), 401, 'UNAUTHORIZED');
      expectLimited(await attempt(), 2, 60);
    });
  });
}
