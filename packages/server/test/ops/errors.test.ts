import { RuntimeError } from '@corral/runtime';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, apiError, ERRORS, fromRuntimeError, toApiError } from '../../src/errors.js';
import { createTestApp, expectError, type TestApp } from '../support/app.js';

describe('error catalogue', () => {
  it('builds errors with the catalogue status and a filled template', () => {
    const err = apiError('ROUTE_NOT_FOUND', { method: 'GET', url: '/nope' });
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.message).toBe('No route GET /nope');
    expect(apiError('FORBIDDEN', {}, 'custom').message).toBe('custom');
  });

  it('gives every *_NOT_FOUND code 404 and every code a 4xx/5xx status', () => {
    for (const [code, entry] of Object.entries(ERRORS)) {
      if (code.endsWith('_NOT_FOUND')) expect(entry.status, code).toBe(404);
      expect(entry.status >= 400 && entry.status < 600, code).toBe(true);
    }
  });

  it('maps runtime errors in one place, keeping safe details', () => {
    expect(fromRuntimeError(new RuntimeError('SANDBOX_NOT_FOUND', 'no such sandbox')).status).toBe(404);
    expect(fromRuntimeError(new RuntimeError('INVALID_STATE', 'paused')).code).toBe('INVALID_STATE');
    const outside = fromRuntimeError(new RuntimeError('PATH_OUTSIDE_SANDBOX', 'nope', { path: '../x' }));
    expect(outside.status).toBe(400);
    expect(outside.details).toEqual({ path: '../x', runtime_code: 'PATH_OUTSIDE_SANDBOX' });
    expect(fromRuntimeError(new RuntimeError('PREREQUISITE_MISSING', 'no bwrap')).status).toBe(503);
    const internal = fromRuntimeError(new RuntimeError('INTERNAL', 'helper crashed at 0xdead'));
    expect(internal.code).toBe('INTERNAL');
    expect(internal.message).not.toContain('0xdead');
    expect(toApiError(new Error('boom')).code).toBe('INTERNAL');
  });
});

describe('error responses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      config: { bodyLimitBytes: 2048 },
      configure: (app) => {
        app.post(
          '/test/echo',
          {
            config: { public: true },
            schema: {
              body: Type.Object(
                { name: Type.String({ minLength: 1 }), count: Type.Optional(Type.Integer({ minimum: 0 })) },
                { additionalProperties: false },
              ),
            },
          },
          async (request) => request.body,
        );
        app.get(
          '/test/query',
          {
            config: { public: true },
            schema: {
              querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }),
            },
          },
          async (request) => ({ limit: request.query.limit ?? null, type: typeof request.query.limit }),
        );
        app.get('/test/items/:id', { config: { public: true } }, async () => ({ ok: true }));
        app.get('/test/crash', { config: { public: true } }, async () => {
          throw new Error('secret internal detail at /srv/corral/db password=hunter2');
        });
        app.get('/test/runtime', { config: { public: true } }, async () => {
          throw new RuntimeError('SANDBOX_NOT_FOUND', 'Sandbox sbx_x not found', { id: 'sbx_x' });
        });
        app.get('/test/api-error', { config: { public: true } }, async () => {
          throw apiError('INVALID_STATE', { status: 'paused' });
        });
      },
    });
  });
  afterAll(async () => t?.close());

  it('unknown route → 404 ROUTE_NOT_FOUND', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/definitely-not-here?x=1' });
    expect(res.statusCode).toBe(404);
    const body = expectError(res, 'ROUTE_NOT_FOUND');
    expect(body.error.details).toEqual({ method: 'GET', url: '/v1/definitely-not-here' });
  });

  it('a known path with another method → 404 ROUTE_NOT_FOUND', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/healthz' });
    expectError(res, 'ROUTE_NOT_FOUND');
  });

  it('malformed JSON → 400 BAD_REQUEST', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "x",',
    });
    expect(res.statusCode).toBe(400);
    expectError(res, 'BAD_REQUEST');
  });

  it('empty JSON body → 400 BAD_REQUEST', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    expectError(res, 'BAD_REQUEST');
  });

  it('prototype poisoning → 400 BAD_REQUEST', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"name":"x","__proto__":{"admin":true}}',
    });
    expectError(res, 'BAD_REQUEST');
  });

  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
  ])('Content-Type %s on a JSON route → 415', async (contentType) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': contentType },
      payload: 'name=x',
    });
    expect(res.statusCode).toBe(415);
    const body = expectError(res, 'UNSUPPORTED_MEDIA_TYPE');
    expect(body.error.details.supported).toEqual(['application/json']);
  });

  it('body over the limit → 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x'.repeat(4096) }),
    });
    expect(res.statusCode).toBe(413);
    expect(expectError(res, 'PAYLOAD_TOO_LARGE').error.details).toEqual({ limit_bytes: 2048 });
  });

  it('schema violation → 400 VALIDATION_ERROR naming the field', async () => {
    const missing = await t.app.inject({ method: 'POST', url: '/test/echo', payload: {} });
    expect(missing.statusCode).toBe(400);
    expect(expectError(missing, 'VALIDATION_ERROR').error.details).toEqual({
      in: 'body',
      fields: [{ path: '/name', message: 'is required' }],
    });

    const wrongType = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      payload: { name: 'a', count: -1 },
    });
    const fields = expectError(wrongType, 'VALIDATION_ERROR').error.details.fields as { path: string }[];
    expect(fields.map((f) => f.path)).toEqual(['/count']);

    const extra = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      payload: { name: 'a', admin: true },
    });
    expect(expectError(extra, 'VALIDATION_ERROR').error.details.fields).toEqual([
      { path: '/admin', message: 'is not allowed' },
    ]);
  });

  it('bodies are not type-coerced, querystrings are', async () => {
    const body = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      payload: { name: 'a', count: '5' },
    });
    expectError(body, 'VALIDATION_ERROR');
    const ok = await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'a', count: 5 } });
    expect(ok.json()).toEqual({ name: 'a', count: 5 });

    const query = await t.app.inject({ method: 'GET', url: '/test/query?limit=10' });
    expect(query.json()).toEqual({ limit: 10, type: 'number' });
    const badQuery = await t.app.inject({ method: 'GET', url: '/test/query?limit=abc' });
    expect(expectError(badQuery, 'VALIDATION_ERROR').error.details.in).toBe('querystring');
  });

  it('an unexpected error → 500 INTERNAL with nothing internal in the answer', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/crash' });
    expect(res.statusCode).toBe(500);
    const body = expectError(res, 'INTERNAL');
    expect(body.error.details).toEqual({});
    expect(res.body).not.toMatch(/secret|hunter2|\/srv|at .*\.ts|stack/i);
  });

  it('runtime errors and ApiErrors thrown by handlers keep their codes', async () => {
    const runtime = await t.app.inject({ method: 'GET', url: '/test/runtime' });
    expect(expectError(runtime, 'SANDBOX_NOT_FOUND').error.details).toEqual({
      id: 'sbx_x',
      runtime_code: 'SANDBOX_NOT_FOUND',
    });
    const state = await t.app.inject({ method: 'GET', url: '/test/api-error' });
    expect(state.statusCode).toBe(409);
    expectError(state, 'INVALID_STATE');
  });

  it('a malformed URL → 400 BAD_REQUEST in the error shape', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/items/%E0%A4%A' });
    expect(res.statusCode).toBe(400);
    expectError(res, 'BAD_REQUEST');
  });

  it('X-Request-Id: generated, echoed when well-formed, replaced when not', async () => {
    const generated = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(generated.headers['x-request-id']).toMatch(/^req_[0-9A-Za-z]{22}$/);

    const echoed = await t.app.inject({
      method: 'GET',
      url: '/nope',
      headers: { 'x-request-id': 'trace-abc.123' },
    });
    expect(echoed.headers['x-request-id']).toBe('trace-abc.123');
    expect(expectError(echoed).request_id).toBe('trace-abc.123');

    for (const bad of ['has space', 'x'.repeat(200), '<script>', 'ü']) {
      const replaced = await t.app.inject({
        method: 'GET',
        url: '/healthz',
        headers: { 'x-request-id': bad },
      });
      expect(replaced.headers['x-request-id']).toMatch(/^req_[0-9A-Za-z]{22}$/);
    }

    const errored = await t.app.inject({ method: 'POST', url: '/test/echo', payload: {} });
    expect(errored.headers['x-request-id']).toMatch(/^req_/);
  });
});
