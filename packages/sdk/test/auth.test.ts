import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ERRORS } from '../../server/src/errors.js';
import { jwtLifetimeMs, TokenSource } from '../src/auth.js';
import { errorClassFor, parseRetryAfter } from '../src/errors.js';
import * as sdk from '../src/index.js';
import { Corral, CorralError, UnauthorizedError } from '../src/index.js';
import { apiError, FakeServer } from './support/fake.js';

const SANDBOX = { id: 'sbx_fake', name: 'fake', status: 'running', preview_urls: {}, ws_url: 'ws://x/ws' };

describe('sdk: authentication (loopback fake server)', () => {
  const fake = new FakeServer();
  const client = () => new Corral({ baseUrl: fake.url, apiKey: 'crl_sk_fake' });

  beforeAll(() => fake.start());
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    fake.handler = () => ({ status: 200, json: SANDBOX });
  });

  it('exchanges the API key once for a JWT and sends the JWT', async () => {
    const corral = client();
    await Promise.all([corral.sandboxes.get('a'), corral.sandboxes.get('b')]);
    await corral.sandboxes.get('c');
    const exchange = fake.requests.filter((r) => r.path === '/v1/auth/token');
    expect(exchange).toHaveLength(1);
    expect(JSON.parse(exchange[0]?.body ?? '')).toEqual({ api_key: 'crl_sk_fake' });
    expect(exchange[0]?.authorization).toBeUndefined();
    expect(fake.calls.map((c) => c.authorization)).toEqual(['Bearer jwt-1', 'Bearer jwt-1', 'Bearer jwt-1']);
  });

  it('refreshes a token before it expires', async () => {
    fake.tokenLifetimeMs = -1000; // every token is already past its refresh point
    const corral = client();
    await corral.sandboxes.get('a');
    await corral.sandboxes.get('b');
    expect(fake.calls.map((c) => c.authorization)).toEqual(['Bearer jwt-1', 'Bearer jwt-2']);
  });

  it('after a 401 with an expired token, exchanges once more and retries', async () => {
    fake.handler = (req) =>
      req.authorization === 'Bearer jwt-1'
        ? { status: 401, json: apiError('UNAUTHORIZED') }
        : { status: 200, json: SANDBOX };
    expect((await client().sandboxes.get('a')).id).toBe('sbx_fake');
    expect(fake.calls.map((c) => c.authorization)).toEqual(['Bearer jwt-1', 'Bearer jwt-2']);

    fake.reset();
    fake.handler = () => ({ status: 401, json: apiError('UNAUTHORIZED') });
    await expect(client().sandboxes.get('a')).rejects.toBeInstanceOf(UnauthorizedError);
    expect(fake.calls).toHaveLength(2);
    expect(fake.tokensIssued).toBe(2);
  });

  it('TokenSource: refreshes a minute before expiry (or at 4/5 of a short life), one exchange at a time', async () => {
    let now = 1_000_000;
    let issued = 0;
    let lifetimeMs = 15 * 60_000;
    const source = new TokenSource(
      'key',
      async () => {
        issued += 1;
        return { token: `t${issued}`, expires_at: new Date(now + lifetimeMs).toISOString() };
      },
      () => now,
    );
    expect(await Promise.all([source.token(), source.token()])).toEqual(['t1', 't1']);
    expect(issued).toBe(1);
    now += 14 * 60_000 - 1;
    expect(await source.token()).toBe('t1');
    now += 1;
    expect(await source.token()).toBe('t2');
    lifetimeMs = 10_000;
    now += 15 * 60_000;
    expect(await source.token()).toBe('t3');
    now += 7_999;
    expect(await source.token()).toBe('t3');
    now += 1;
    expect(await source.token()).toBe('t4');
    source.invalidate('t3');
    expect(await source.token()).toBe('t4');
    source.invalidate('t4');
    expect(await source.token()).toBe('t5');
  });
});

describe('sdk: token lifetime from the JWT', () => {
  const jwt = (claims: Record<string, unknown>) =>
    `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;

  it('reads exp − iat, so a skewed clock does not matter', async () => {
    expect(jwtLifetimeMs(jwt({ iat: 1000, exp: 1900 }))).toBe(900_000);
    expect(jwtLifetimeMs(jwt({ exp: 1900 }))).toBeNull();
    expect(jwtLifetimeMs('jwt-1')).toBeNull();
    expect(jwtLifetimeMs('a.!!!.b')).toBeNull();

    // The server's clock is an hour behind ours: expires_at looks long past, the token is fine.
    let now = 5_000_000;
    let issued = 0;
    const source = new TokenSource(
      'key',
      async () => {
        issued += 1;
        return {
          token: jwt({ iat: 1, exp: 901, n: issued }),
          expires_at: new Date(now - 3_600_000).toISOString(),
        };
      },
      () => now,
    );
    const first = await source.token();
    now += 13 * 60_000;
    expect(await source.token()).toBe(first);
    now += 60_000;
    expect(await source.token()).not.toBe(first);
    expect(issued).toBe(2);
  });
});

describe('sdk: configuration and the error catalogue', () => {
  const saved = { key: process.env.CORRAL_API_KEY, url: process.env.CORRAL_URL };
  afterEach(() => {
    for (const [name, value] of [
      ['CORRAL_API_KEY', saved.key],
      ['CORRAL_URL', saved.url],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('reads CORRAL_URL and CORRAL_API_KEY; arguments win; the default URL is local', async () => {
    process.env.CORRAL_URL = 'http://example.test:9999/';
    process.env.CORRAL_API_KEY = 'crl_sk_env';
    expect(new Corral().baseUrl).toBe('http://example.test:9999');
    expect(new Corral({ baseUrl: 'http://other.test' }).baseUrl).toBe('http://other.test');
    delete process.env.CORRAL_URL;
    expect(new Corral().baseUrl).toBe('http://127.0.0.1:8080');
    let sent: string | undefined;
    const corral = new Corral({
      fetch: async (_url, init) => {
        sent = String(init?.body);
        return new Response(JSON.stringify(apiError('UNAUTHORIZED')), { status: 401 });
      },
    });
    await expect(corral.sandboxes.list()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(JSON.parse(sent ?? '')).toEqual({ api_key: 'crl_sk_env' });
  });

  it('without any API key, calls fail with a clear error before any request', async () => {
    delete process.env.CORRAL_API_KEY;
    let called = false;
    const corral = new Corral({
      fetch: async () => {
        called = true;
        return new Response('{}');
      },
    });
    const err = await corral.sandboxes.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorralError);
    expect((err as Error).message).toMatch(/CORRAL_API_KEY/);
    expect(called).toBe(false);
  });

  it('every code of the server catalogue maps to its own exported class (404s are NotFoundErrors)', () => {
    for (const [code, { status }] of Object.entries(ERRORS)) {
      const ErrorType = errorClassFor(code);
      expect(Object.values(sdk), code).toContain(ErrorType);
      const err = new ErrorType('x', { code, status });
      expect(err).toBeInstanceOf(CorralError);
      if (status === 404) expect(err, code).toBeInstanceOf(sdk.NotFoundError);
      expect(ErrorType, code).not.toBe(CorralError);
    }
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('5')).toBe(5);
    expect(
      parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1)),
    ).toBe(10);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});
