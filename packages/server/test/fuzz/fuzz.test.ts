import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapFirstStart } from '../../src/bootstrap.js';
import { ERRORS } from '../../src/errors.js';
import { createApiKey } from '../../src/services/keys.js';
import { reconcileSandboxes } from '../../src/services/sandboxes/reconcile.js';
import { createTestApp, type Driver, type TestApp } from '../support/app.js';

/*
 * Fuzzes every route in the served OpenAPI document with malformed and random bodies,
 * headers, paths and query strings. Whatever comes in, the answer is never a 5xx, and every
 * non-2xx answer is exactly the API's error shape. Seeded: FUZZ_SEED=<n> reproduces a run;
 * FUZZ_REQUESTS=<n> changes the count per driver; FUZZ_VERBOSE=1 prints the status counts.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2500);

/** mulberry32: a tiny seeded PRNG, so every failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

class Gen {
  constructor(readonly next: () => number) {}
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  string(): string {
    return this.pick([
      '',
      ' ',
      'a',
      'x'.repeat(this.int(300)),
      'x'.repeat(70_000),
      'ünïcödé ✓ 🐑 中文',
      '\u0000\u0001\u001f',
      '\ud800',
      '../../../../etc/passwd',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      "'; DROP TABLE users; --",
      '<script>alert(1)</script>',
      '$' + '{jndi:ldap://x}',
      'admin@corral.local',
      'not-an-email',
      `user${this.int(1e6)}@example.test`,
      'crl_sk_' + 'A'.repeat(43),
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfeCJ9.',
      '*',
      'sandbox:create',
      'owner',
      'viewer',
      'superuser',
      '2026-01-01T00:00:00Z',
      '1970-01-01',
      'NaN',
      String(this.int(1e9)),
    ]);
  }
  value(depth = 0): unknown {
    const kind = this.int(depth > 3 ? 6 : 9);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1, 1.5, 2 ** 53 + 1, -(2 ** 31), 1e308, Number.MAX_SAFE_INTEGER]);
      case 3:
      case 4:
      case 5:
        return this.string();
      case 6:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      default: {
        const obj: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--)
          obj[this.pick(['name', 'email', 'x', '__proto__', 'constructor', this.string().slice(0, 20)])] =
            this.value(depth + 1);
        return obj;
      }
    }
  }
}

/** encodeURIComponent that also takes lone surrogates (encoded as U+FFFD, as browsers do). */
function encode(text: string): string {
  return encodeURIComponent(
    text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  );
}

interface Operation {
  method: string;
  path: string;
  properties: string[];
  queryParams: string[];
}

function operationsOf(doc: { paths: Record<string, Record<string, Record<string, unknown>>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const body = (op.requestBody as { content?: Record<string, { schema?: { properties?: object } }> })
        ?.content;
      const schema = body?.['application/json']?.schema;
      const params = (op.parameters as { in: string; name: string }[] | undefined) ?? [];
      ops.push({
        method: method.toUpperCase(),
        path,
        properties: Object.keys(schema?.properties ?? {}),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
      });
    }
  }
  return ops;
}

interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

function describeRequest(req: FuzzRequest): string {
  const payload = req.payload === undefined ? '' : ` body=${JSON.stringify(req.payload.slice(0, 200))}`;
  return `${req.method} ${req.url.slice(0, 200)} headers=${JSON.stringify(req.headers).slice(0, 300)}${payload}`;
}

function makeRequest(g: Gen, op: Operation, known: { ids: string[]; keys: string[] }): FuzzRequest {
  const segment = (): string =>
    g.pick([
      () => g.pick(known.ids),
      () => `${g.pick(['sbx', 'ws', 'key', 'usr', 'snap', 'evt'])}_${'A'.repeat(g.int(30))}`,
      () => encode(g.string()).slice(0, 5000),
      () => '..%2F..%2Fetc%2Fpasswd',
      () => '%00',
      () => '%E0%A4%A',
      () => 'a'.repeat(2000),
      () => encode('ü🐑'),
      () => String(g.int(1e6)),
    ])();
  let url = op.path.replace(/\{[^}]+\}/g, () => segment());
  if (g.chance(0.05)) url += `/${segment()}`;
  if (g.chance(0.4)) {
    const names = [...op.queryParams, 'limit', 'cursor', 'path', 'x'];
    const query = Array.from({ length: 1 + g.int(3) }, () => {
      const value = g.pick(['-1', '0', '501', 'abc', '1e3', '', '%', g.string().slice(0, 100), 'e30', 'W10']);
      return `${encode(g.pick(names))}=${encode(value)}`;
    });
    url += `?${query.join('&')}`;
  }

  const headers: Record<string, string> = {};
  const auth = g.int(10);
  if (auth < 4 && known.keys.length > 0) headers.authorization = `Bearer ${g.pick(known.keys)}`;
  else if (auth === 4)
    headers.authorization = g.pick(['Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', 'ApiKey', 'Bearer a b']);
  else if (auth === 5) headers.authorization = `Bearer ${g.string().replace(/[^\x21-\x7e]/g, '')}x`;
  else if (auth === 6) headers.authorization = `Bearer ${'x'.repeat(16_000)}`;
  else if (auth === 7) headers.cookie = `corral_session=${g.pick(['', 'garbage', 'x'.repeat(5000), '%ff'])}`;
  if (g.chance(0.1)) headers['x-request-id'] = g.pick(['ok-1', 'x'.repeat(500), 'bad id', '']);
  if (g.chance(0.1)) headers['x-csrf-token'] = g.string().replace(/[^\x21-\x7e]/g, '') || 'x';
  if (g.chance(0.05)) headers['x-huge'] = 'h'.repeat(32_000);
  if (g.chance(0.05))
    headers.accept = g.pick(['text/event-stream', 'application/x-ndjson', '*/*', 'image/png']);

  let payload: string | undefined;
  if (op.method !== 'GET' || g.chance(0.1)) {
    const shape = g.int(10);
    if (shape < 4) {
      // Schema-aware: the route's own fields with random (mostly wrong) values.
      const body: Record<string, unknown> = {};
      for (const p of op.properties) if (g.chance(0.7)) body[p] = g.value();
      if (g.chance(0.2)) body[g.string().slice(0, 30)] = g.value();
      payload = JSON.stringify(body);
    } else if (shape < 7) {
      payload = JSON.stringify(g.value());
    } else {
      payload = g.pick([
        '',
        '{',
        '{"a":',
        'null',
        '[]',
        '"\\ud800"',
        '{"__proto__":{"isAdmin":true}}',
        '{"constructor":{"prototype":{"x":1}}}',
        '['.repeat(5000) + ']'.repeat(5000),
        `{"x":"${'y'.repeat(2 * 1024 * 1024)}"}`,
        '\u0000\u0001',
        'name=x&email=y',
      ]);
    }
    headers['content-type'] = g.pick([
      'application/json',
      'application/json',
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=zzz',
      'application/octet-stream',
      'garbage',
      'application/json; charset=utf-16',
    ]);
    if (g.chance(0.05)) delete headers['content-type'];
  }
  return {
    method: g.chance(0.03) ? g.pick(['HEAD', 'OPTIONS', 'PUT', 'PATCH']) : op.method,
    url,
    headers,
    payload,
  };
}

for (const driver of ['sqlite', 'postgres'] as Driver[]) {
  describe(`fuzz every route [${driver}]`, () => {
    let t: TestApp;
    const known = { ids: [] as string[], keys: [] as string[] };
    beforeAll(async () => {
      // A real runtime, so the sandbox routes are exercised (not 503); sandboxes the fuzz
      // manages to create are destroyed by t.close(). Reconciled first, as main.ts does before
      // listening: the runtime has finished starting before the first request.
      t = await createTestApp({ driver, runtime: true });
      await reconcileSandboxes(t.app.sandboxes);
      const admin = await bootstrapFirstStart({ config: t.config, store: t.store, audit: t.app.audit });
      known.ids.push(admin!.workspace_id, admin!.user_id);
      known.keys.push(admin!.api_key);
      // Several keys, so the per-key rate limit leaves most requests reaching the handlers.
      for (let i = 0; i < 5; i++) {
        const key = await createApiKey(
          { store: t.store, audit: t.app.audit },
          { userId: admin!.user_id, workspaceId: admin!.workspace_id, name: `fuzz ${i}`, scopes: ['*'] },
        );
        known.keys.push(key.key);
        known.ids.push(key.id);
      }
      // A real sandbox whose id the fuzz knows: exec, files, env, lifecycle … get garbage aimed
      // at something that exists.
      const created = await t.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: { authorization: `Bearer ${admin!.api_key}` },
        payload: {},
      });
      expect(created.statusCode, created.body).toBe(201);
      known.ids.push(created.json().id);
    });
    afterAll(async () => t?.close());

    it(`answers ${REQUESTS} random requests without a 5xx, every error in the error shape (seed ${SEED})`, async () => {
      const spec = await t.app.inject({ method: 'GET', url: '/v1/openapi.json' });
      const ops = operationsOf(spec.json());
      expect(ops.length).toBeGreaterThan(5);
      const g = new Gen(prng(SEED + (driver === 'postgres' ? 1 : 0)));
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      for (let i = 0; i < REQUESTS && failures.length < 10; i++) {
        // Every route gets its turn before any gets a second.
        const op = i < ops.length ? ops[i]! : g.pick(ops);
        const req = makeRequest(g, op, known);
        const res = await t.app.inject(req);
        // Ids the fuzz itself created (a sandbox, a snapshot …) become targets too.
        if (res.statusCode === 201 || res.statusCode === 202) {
          const id = (JSON.parse(res.body || '{}') as { id?: unknown }).id;
          if (typeof id === 'string') known.ids.push(id);
        }
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const problem = checkResponse(req, res);
        if (problem) failures.push(`#${i} ${problem}\n    ${describeRequest(req)}`);
      }
      if (process.env.FUZZ_VERBOSE) console.info(`fuzz [${driver}] statuses`, Object.fromEntries(statuses));
      expect(failures, `seed ${SEED}, statuses ${JSON.stringify([...statuses])}`).toEqual([]);
      // The fuzz reached past authentication and validation, not only the front door.
      expect([...statuses.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
      expect(statuses.get(401) ?? 0).toBeGreaterThan(0);
    });
  });
}

function checkResponse(
  req: FuzzRequest,
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
): string | null {
  const requestId = res.headers['x-request-id'];
  if (typeof requestId !== 'string' || requestId.length === 0)
    return `no X-Request-Id (status ${res.statusCode})`;
  if (res.statusCode >= 500) return `status ${res.statusCode}: ${res.body.slice(0, 300)}`;
  if (res.statusCode < 400 || req.method === 'HEAD') return null;
  let body: { error?: { code?: string; message?: unknown; details?: unknown }; request_id?: unknown };
  try {
    body = JSON.parse(res.body);
  } catch {
    return `status ${res.statusCode} body is not JSON: ${res.body.slice(0, 200)}`;
  }
  const keys = Object.keys(body).sort().join(',');
  if (keys !== 'error,request_id') return `top-level keys ${keys}`;
  const error = body.error ?? {};
  if (Object.keys(error).sort().join(',') !== 'code,details,message')
    return `error keys ${Object.keys(error)}`;
  const code = String(error.code);
  if (!Object.hasOwn(ERRORS, code)) return `unknown code ${code}`;
  if (ERRORS[code as keyof typeof ERRORS].status !== res.statusCode)
    return `code ${code} with status ${res.statusCode}`;
  if (typeof error.message !== 'string') return 'message is not a string';
  if (!error.details || typeof error.details !== 'object' || Array.isArray(error.details))
    return 'details is not an object';
  if (body.request_id !== requestId) return `request_id ${String(body.request_id)} != header ${requestId}`;
  if (/\bat .+\.(ts|js):\d+|node_modules|SQLITE_|syntax error at/.test(res.body))
    return `internal detail leaked: ${res.body.slice(0, 300)}`;
  return null;
}
