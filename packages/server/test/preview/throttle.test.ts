import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { bearer, createKey, registerAccount } from '../auth/helpers.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { freePort } from '../support/services.js';
import { previewHost, send } from './helpers.js';

/**
 * The preview password throttle on Redis: two servers (replicas) on one database and one Redis
 * share one budget of attempts per (sandbox, port, client IP).
 */
describe('preview passwords: one throttle across replicas (Redis store)', () => {
  let first: TestApp;
  let second: App;
  let ports: [number, number];
  let id: string;
  const basic = (password: string) => ({
    authorization: `Basic ${Buffer.from(`u:${password}`).toString('base64')}`,
  });
  const attempt = (server: 0 | 1, password: string, port = 3000) =>
    send(ports[server], previewHost(id, port, ports[server]), { headers: basic(password) });

  beforeAll(async () => {
    first = await createTestApp({ config: { redisUrl: inject('redisUrl') }, runtime: true });
    const engine = first.engine!;
    second = await buildApp({
      config: first.config,
      store: first.store,
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
      runtime: engine.runtime,
      templates: engine.templates,
    });
    await second.ready();
    for (const app of [first.app, second]) await app.listen({ port: 0, host: '127.0.0.1' });
    ports = [first.app, second].map((app) => (app.server.address() as AddressInfo).port) as [number, number];
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('counts attempts on either server, and refuses on both once 5 are used', async () => {
    const { app } = first;
    const { key } = await createKey(app, await registerAccount(app, 'throttle'));
    const user = bearer(key);
    const created = await app.inject({ method: 'POST', url: '/v1/sandboxes', headers: user, payload: {} });
    expect(created.statusCode, created.body).toBe(201);
    id = created.json().id;
    for (const port of [3000, 3001]) {
      const protect = await app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/ports/${port}/protect`,
        headers: user,
        payload: { password: 'open sesame' },
      });
      expect(protect.statusCode, protect.body).toBe(200);
    }

    for (const server of [0, 1, 0, 1, 0] as const) {
      expect((await attempt(server, `wrong ${server}`)).status).toBe(401);
    }
    for (const server of [0, 1] as const) {
      const blocked = await attempt(server, 'open sesame');
      expect(blocked.status).toBe(429);
      expect(JSON.parse(blocked.text).error.code).toBe('RATE_LIMITED');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    }
  });

  it('lets a right password sent on every request (Basic) through without using the budget', async () => {
    // Nothing listens on 3001: 502 not_listening means the password was taken.
    for (let i = 0; i < 8; i++) expect((await attempt(0, 'open sesame', 3001)).status).toBe(502);
    // The first check of the right one used one attempt; four are left.
    for (let i = 0; i < 4; i++) expect((await attempt(0, `wrong ${i}`, 3001)).status).toBe(401);
    expect((await attempt(0, 'wrong again', 3001)).status).toBe(429);
    // Known right on the server that checked it; the other one has never checked it: blocked.
    expect((await attempt(0, 'open sesame', 3001)).status).toBe(502);
    expect((await attempt(1, 'open sesame', 3001)).status).toBe(429);
  });
});

describe('preview passwords when the throttle’s Redis is down', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await createTestApp({
      config: { redisUrl: `redis://127.0.0.1:${await freePort()}` },
      runtime: true,
    });
    await testApp.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await testApp?.close();
  });

  it('refuses unknown passwords with 503 CAPACITY_EXHAUSTED rather than let guesses through unthrottled', async () => {
    const { app } = testApp;
    const { key } = await createKey(app, await registerAccount(app, 'throttle-down'));
    const created = await app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers: bearer(key),
      payload: {},
    });
    expect(created.statusCode, created.body).toBe(201);
    const sandbox = created.json().id as string;
    const protect = await app.inject({
      method: 'POST',
      url: `/v1/sandboxes/${sandbox}/ports/3000/protect`,
      headers: bearer(key),
      payload: { password: 'open sesame' },
    });
    expect(protect.statusCode, protect.body).toBe(200);
    const port = (app.server.address() as AddressInfo).port;
    for (const password of ['wrong', 'open sesame']) {
      const res = await send(port, previewHost(sandbox, 3000, port), {
        headers: { authorization: `Basic ${Buffer.from(`u:${password}`).toString('base64')}` },
      });
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text).error).toMatchObject({
        code: 'CAPACITY_EXHAUSTED',
        details: { reason: 'throttle_unavailable' },
      });
    }
    // Members still get in with their key.
    const member = await send(port, previewHost(sandbox, 3000, port), { headers: bearer(key) });
    expect(member.status).toBe(502); // nothing listens on 3000: past the access check
  });
});
