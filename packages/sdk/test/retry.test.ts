import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CapacityExhaustedError,
  ConnectionError,
  Corral,
  CorralError,
  RateLimitError,
  type RetryInfo,
} from '../src/index.js';
import { apiError, FakeServer } from './support/fake.js';

const SANDBOX = { id: 'sbx_fake', name: 'fake', status: 'running', preview_urls: {}, ws_url: 'ws://x/ws' };

describe('sdk: retries and backoff (loopback fake server)', () => {
  const fake = new FakeServer();
  let retries: RetryInfo[];
  const client = (options: ConstructorParameters<typeof Corral>[0] = {}) =>
    new Corral({
      baseUrl: fake.url,
      apiKey: 'crl_sk_fake',
      retry: { baseDelayMs: 10, maxDelayMs: 40 },
      onRetry: (info) => retries.push(info),
      ...options,
    });

  beforeAll(() => fake.start());
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    retries = [];
  });

  it('retries a 429 after the Retry-After it names, then answers', async () => {
    fake.handler = (_req, n) =>
      n === 1
        ? { status: 429, headers: { 'retry-after': '1' }, json: apiError('RATE_LIMITED') }
        : { status: 200, json: SANDBOX };
    const box = await client().sandboxes.get('sbx_fake');
    expect(box.id).toBe('sbx_fake');
    expect(fake.calls).toHaveLength(2);
    expect(retries).toEqual([
      expect.objectContaining({
        method: 'GET',
        path: '/v1/sandboxes/sbx_fake',
        attempt: 1,
        delayMs: 1000,
        status: 429,
      }),
    ]);
  });

  it('gives up after maxRetries with a RateLimitError carrying the last retryAfter', async () => {
    fake.handler = (_req, n) => ({
      status: 429,
      headers: { 'retry-after': n < 3 ? '0' : '30' },
      json: apiError('RATE_LIMITED'),
    });
    const err = await client({ maxRetries: 2 })
      .sandboxes.get('sbx_fake')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({
      code: 'RATE_LIMITED',
      status: 429,
      retryAfter: 30,
      requestId: expect.stringMatching(/^req_fake/),
    });
    expect(fake.calls).toHaveLength(3);
    expect(retries.map((r) => r.delayMs)).toEqual([0, 0]);
  });

  it('does not wait out a Retry-After longer than maxRetryAfterMs', async () => {
    fake.handler = () => ({
      status: 429,
      headers: { 'retry-after': '3600' },
      json: apiError('RATE_LIMITED'),
    });
    await expect(client().sandboxes.get('sbx_fake')).rejects.toMatchObject({ retryAfter: 3600 });
    expect(fake.calls).toHaveLength(1);
  });

  it('retries 503 for any method with exponential backoff and jitter', async () => {
    fake.handler = (_req, n) =>
      n <= 2 ? { status: 503, json: apiError('CAPACITY_EXHAUSTED') } : { status: 201, json: SANDBOX };
    const box = await client().sandboxes.create({ template: 'base' });
    expect(box.id).toBe('sbx_fake');
    expect(fake.calls.map((c) => c.method)).toEqual(['POST', 'POST', 'POST']);
    expect(retries).toHaveLength(2);
    // Full jitter in [d/2, d]: d = 10 ms, then 20 ms.
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(5);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(10);
    expect(retries[1]?.delayMs).toBeGreaterThanOrEqual(10);
    expect(retries[1]?.delayMs).toBeLessThanOrEqual(20);

    fake.reset();
    fake.handler = () => ({ status: 503, json: apiError('CAPACITY_EXHAUSTED') });
    await expect(client({ maxRetries: 0 }).sandboxes.get('x')).rejects.toBeInstanceOf(CapacityExhaustedError);
    expect(fake.calls).toHaveLength(1);
  });

  it('retries an idempotent request whose connection failed, never a POST', async () => {
    fake.handler = (_req, n) => (n === 1 ? 'destroy' : { status: 200, json: SANDBOX });
    expect((await client().sandboxes.get('sbx_fake')).id).toBe('sbx_fake');
    expect(fake.calls).toHaveLength(2);
    expect(retries[0]).toMatchObject({ status: null, attempt: 1 });

    fake.reset();
    fake.handler = () => 'destroy';
    const err = await client()
      .sandboxes.create({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'CONNECTION_ERROR', status: 0 });
    expect(fake.calls).toHaveLength(1);
  });

  it('a streamed upload body is never retried', async () => {
    fake.handler = () => ({ status: 503, json: apiError('CAPACITY_EXHAUSTED') });
    const box = client().sandboxes.wrap(SANDBOX as never);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('x'));
        c.close();
      },
    });
    await expect(box.files.write('a', body)).rejects.toBeInstanceOf(CapacityExhaustedError);
    expect(fake.calls).toHaveLength(1);
  });

  it('an AbortSignal cancels a retry wait and an unanswered request', async () => {
    fake.handler = () => ({ status: 429, headers: { 'retry-after': '50' }, json: apiError('RATE_LIMITED') });
    const controller = new AbortController();
    const pending = client({ retry: { maxRetryAfterMs: 120_000 } }).sandboxes.get('x', {
      signal: controller.signal,
    });
    await expect.poll(() => retries.length).toBe(1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });

    fake.handler = () => 'hang';
    const second = new AbortController();
    const hanging = client().sandboxes.list({ signal: second.signal });
    await expect.poll(() => fake.calls.length).toBe(2);
    second.abort(new Error('gave up'));
    await expect(hanging).rejects.toThrow('gave up');
  });

  it('maps unknown codes and non-JSON answers to CorralError', async () => {
    fake.handler = () => ({ status: 418, json: apiError('TEAPOT_EXPLODED', { why: 'tea' }) });
    const err = await client()
      .sandboxes.get('x')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorralError);
    expect(err).toMatchObject({
      name: 'CorralError',
      code: 'TEAPOT_EXPLODED',
      status: 418,
      details: { why: 'tea' },
    });

    fake.handler = () => ({ status: 502, text: '<html>bad gateway</html>' });
    await expect(client().sandboxes.get('x')).rejects.toMatchObject({ code: 'HTTP_502', status: 502 });
    fake.handler = () => ({ status: 404, json: apiError('WORKSPACE_NOT_FOUND') });
    await expect(client().sandboxes.get('x')).rejects.toMatchObject({ name: 'NotFoundError' });
  });
});
