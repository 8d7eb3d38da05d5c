import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/logger.js';
import { addReadinessCheck } from '../../src/routes/ops/health.js';
import { createTestApp, describeStores, expectError, type TestApp } from '../support/app.js';

describeStores('ops routes', (ctx) => {
  it('GET /healthz answers ok as text', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('ok');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['x-request-id']).toMatch(/^req_[0-9A-Za-z]{22}$/);
  });

  it('GET /readyz reports the database', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });

  it('GET /metrics counts requests by route pattern, never by raw URL', async () => {
    await ctx.app.inject({ method: 'GET', url: '/healthz' });
    await ctx.app.inject({ method: 'GET', url: '/v1/workspaces/ws_doesnotexist12345678901' });
    await ctx.app.inject({ method: 'GET', url: '/no/such/route/abc123' });
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/corral_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(res.body).toMatch(
      /corral_http_requests_total\{method="GET",route="\/v1\/workspaces\/:id",status="401"\}/,
    );
    expect(res.body).toMatch(/corral_http_requests_total\{method="GET",route="not_found",status="404"\}/);
    expect(res.body).toMatch(
      /corral_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz"\}/,
    );
    expect(res.body).not.toContain('ws_doesnotexist');
    expect(res.body).not.toContain('abc123');
  });

  it('GET /v1/openapi.json is OpenAPI 3.1 with every route and the security schemes', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/healthz', '/readyz', '/metrics', '/v1/pricing']),
    );
    expect(doc.paths['/v1/openapi.json']).toBeUndefined();
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'jwt', 'session']);
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message', 'details']);
    expect(doc.paths['/readyz'].get.responses.default.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
  });

  it('GET /docs serves the API explorer', async () => {
    let res = await ctx.app.inject({ method: 'GET', url: '/docs' });
    if (res.statusCode === 302)
      res = await ctx.app.inject({ method: 'GET', url: String(res.headers.location) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toMatch(/swagger/i);
  });

  it('answers the public routes without credentials, and only those', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/openapi.json', '/v1/pricing', '/docs/json']) {
      const res = await ctx.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
    }
    const docs = await ctx.app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(docs.statusCode);
    for (const url of ['/v1/auth/me', '/v1/workspaces', '/v1/account/keys']) {
      expectError(await ctx.app.inject({ method: 'GET', url }), 'UNAUTHORIZED');
    }
  });

  it('ctx.createCaller gives a key that authenticates', async () => {
    const caller = await ctx.createCaller({ scopes: ['sandbox:read'] });
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: caller.headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().auth).toMatchObject({
      kind: 'key',
      workspace_id: caller.workspaceId,
      scopes: ['sandbox:read'],
    });
  });

  it('NUL characters in params, query or body are a 400 naming the field, on both drivers', async () => {
    const caller = await ctx.createCaller();
    const param = await ctx.app.inject({
      method: 'DELETE',
      url: '/v1/account/keys/%00',
      headers: caller.headers,
    });
    expect(expectError(param, 'VALIDATION_ERROR').error.details).toEqual({
      in: 'params',
      fields: [{ path: '/id', message: expect.any(String) }],
    });
    const query = await ctx.app.inject({
      method: 'GET',
      url: '/v1/account/keys?cursor=a%00b',
      headers: caller.headers,
    });
    expect(expectError(query, 'VALIDATION_ERROR').error.details.in).toBe('querystring');
    const body = await ctx.app.inject({
      method: 'POST',
      url: '/v1/account/keys',
      headers: caller.headers,
      payload: { name: 'a\u0000b' },
    });
    expect(expectError(body, 'VALIDATION_ERROR').error.details).toEqual({
      in: 'body',
      fields: [{ path: '/name', message: expect.any(String) }],
    });
  });

  it('GET /v1/pricing lists the plans with their limits and decimal prices', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/pricing' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.data.map((p: { id: string }) => p.id)).toEqual(['free', 'pro', 'team']);
    expect(
      body.data.map((p: { rate_limit: { requests_per_minute: number } }) => p.rate_limit.requests_per_minute),
    ).toEqual([60, 300, 1000]);
    for (const plan of body.data) {
      expect(plan.price_per_month.amount_usd).toMatch(/^\d+\.\d{2}$/);
      expect(plan.concurrency.max_sandboxes).toBeGreaterThan(0);
      expect(plan.resources.max_memory_mb).toBeGreaterThan(0);
    }
    expect(body.default_plan).toBe('team');
  });
});

describe('readiness failures', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      configure: (app) =>
        addReadinessCheck(app, 'runtime', async () => {
          throw new Error('runtime helper missing');
        }),
    });
  });
  afterAll(async () => t?.close());

  it('GET /readyz → 503 naming the failing check', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    const body = expectError(res, 'CAPACITY_EXHAUSTED');
    expect(body.error.details).toEqual({
      checks: { database: 'ok', runtime: 'failed' },
      failing: ['runtime'],
    });
    expect(res.body).not.toContain('helper missing');
  });

  it('GET /readyz → 503 when the database is gone', async () => {
    await t.store.close();
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(expectError(res, 'CAPACITY_EXHAUSTED').error.details.failing).toEqual(['database', 'runtime']);
  });
});

describe('logs', () => {
  const lines: string[] = [];
  let t: TestApp;
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    t = await createTestApp({ logger: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => t?.close());

  it('one JSON line per request with the request id, and no credentials', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/auth/me?token=eyJsecretjwt',
      headers: {
        authorization: 'Bearer crl_sk_supersecretvalue',
        cookie: 'corral_session=sessionsecret',
        'x-request-id': 'log-test-1',
      },
    });
    expect(res.statusCode).toBe(401);
    const mine = lines.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'log-test-1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ route: '/v1/auth/me', status: 401, method: 'GET' });
    expect(mine[0].url).toBe('/v1/auth/me?token=[redacted]');
    const all = lines.join('\n');
    expect(all).not.toContain('supersecretvalue');
    expect(all).not.toContain('sessionsecret');
    expect(all).not.toContain('eyJsecretjwt');
  });
});

describe('redactUrl', () => {
  it('blanks every capability in a query: tokens, observer tokens, signatures', () => {
    expect(redactUrl('/v1/sandboxes/sbx_a/terminal?session=s1&observe=123.abc&cols=80')).toBe(
      '/v1/sandboxes/sbx_a/terminal?session=s1&observe=[redacted]&cols=80',
    );
    expect(redactUrl('/v1/snapshots/snap_a/archive?expires=1&sig=deadbeef')).toBe(
      '/v1/snapshots/snap_a/archive?expires=1&sig=[redacted]',
    );
    expect(redactUrl('/x?token=a&api_key=b')).toBe('/x?token=[redacted]&api_key=[redacted]');
    expect(redactUrl('/v1/sandboxes?status=running')).toBe('/v1/sandboxes?status=running');
  });
});
