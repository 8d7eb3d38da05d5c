import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { envContext } from '../../src/services/sandboxes/env-secrets.js';
import { SecretBox } from '../../src/services/secrets.js';
import { createTestApp, describeStores, expectError, type TestApp } from '../support/app.js';
import { memberHeaders, ownerHeaders, runIn } from '../templates/support.js';

const FIRST = `first-${randomBytes(8).toString('hex')}`;
const SECOND = `second-${randomBytes(8).toString('hex')}`;
const REPLACED = `replaced-${randomBytes(8).toString('hex')}`;

describeStores(
  'sandboxes: env secrets',
  (ctx) => {
    const create = async (headers: { authorization: string }, env: Record<string, string> = {}) => {
      const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload: { env } });
      expect(res.statusCode, res.body).toBe(201);
      return res.json().id as string;
    };
    const envOf = (id: string) => ctx.app.sandboxes.envFor(id);

    it('lists names only, merges on PUT, deletes one; every exec sees the current values', async () => {
      const caller = await ctx.createCaller();
      const id = await create(caller.headers, { API_TOKEN: FIRST });
      const url = `/v1/sandboxes/${id}/env`;

      const listed = await ctx.app.inject({ method: 'GET', url, headers: caller.headers });
      expect(listed.statusCode).toBe(200);
      expect(listed.json()).toEqual({ names: ['API_TOKEN'] });
      expect((await runIn(ctx.engine.runtime, id, 'printenv', ['API_TOKEN'], await envOf(id))).stdout).toBe(
        `${FIRST}\n`,
      );

      const put = await ctx.app.inject({
        method: 'PUT',
        url,
        headers: caller.headers,
        payload: { vars: { API_TOKEN: REPLACED, _OTHER_1: SECOND } },
      });
      expect(put.statusCode, put.body).toBe(200);
      expect(put.json()).toEqual({ names: ['API_TOKEN', '_OTHER_1'] });
      for (const body of [put.body, listed.body]) {
        for (const value of [FIRST, SECOND, REPLACED]) expect(body).not.toContain(value);
      }
      const after = await runIn(
        ctx.engine.runtime,
        id,
        'sh',
        ['-c', 'echo "$API_TOKEN:$_OTHER_1"'],
        await envOf(id),
      );
      expect(after.stdout).toBe(`${REPLACED}:${SECOND}\n`);

      // A merge keeps what it does not name.
      const merged = await ctx.app.inject({
        method: 'PUT',
        url,
        headers: caller.headers,
        payload: { vars: { THIRD: 'x' } },
      });
      expect(merged.json()).toEqual({ names: ['API_TOKEN', 'THIRD', '_OTHER_1'] });

      const removed = await ctx.app.inject({
        method: 'DELETE',
        url: `${url}/_OTHER_1`,
        headers: caller.headers,
      });
      expect(removed.statusCode).toBe(204);
      expect(removed.body).toBe('');
      expect((await ctx.app.inject({ method: 'GET', url, headers: caller.headers })).json()).toEqual({
        names: ['API_TOKEN', 'THIRD'],
      });
      const gone = await runIn(ctx.engine.runtime, id, 'printenv', ['_OTHER_1'], await envOf(id));
      expect(gone.exitCode).toBe(1);
      expect(gone.stdout).toBe('');

      const again = expectError(
        await ctx.app.inject({ method: 'DELETE', url: `${url}/_OTHER_1`, headers: caller.headers }),
        'NOT_FOUND',
      );
      expect(again.error.details).toEqual({ name: '_OTHER_1' });

      // Neither the Sandbox view nor the audit trail holds a value; the trail names the names.
      const view = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}`,
        headers: caller.headers,
      });
      const events = await ctx.store.db
        .selectFrom('audit_events')
        .select(['action', 'details'])
        .where('target_id', '=', id)
        .execute();
      const trail = JSON.stringify(events);
      for (const value of [FIRST, SECOND, REPLACED]) {
        expect(view.body).not.toContain(value);
        expect(trail).not.toContain(value);
      }
      const actions = events.map((e) => e.action);
      expect(actions.filter((a) => a === 'sandbox.env.set')).toHaveLength(2);
      expect(actions).toContain('sandbox.env.delete');
      const set = events.find((e) => e.action === 'sandbox.env.set');
      expect(JSON.parse(set!.details).names).toEqual(['API_TOKEN', '_OTHER_1']);
      const events2 = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/events`,
        headers: caller.headers,
      });
      for (const value of [FIRST, SECOND, REPLACED]) expect(events2.body).not.toContain(value);
    });

    it('stores ciphertext bound to the sandbox and the name', async () => {
      const caller = await ctx.createCaller();
      const id = await create(caller.headers, { API_TOKEN: FIRST });
      const other = await create(caller.headers);
      const row = await ctx.store.db
        .selectFrom('sandbox_env')
        .selectAll()
        .where('sandbox_id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.name).toBe('API_TOKEN');
      expect(row.value).not.toContain(FIRST);
      expect(row.value).toMatch(/^v1\./);
      const box = ctx.app.sandboxes.secrets;
      expect(box.decrypt(row.value, envContext(id, 'API_TOKEN'))).toBe(FIRST);
      expect(() => box.decrypt(row.value, envContext(other, 'API_TOKEN'))).toThrow();
      expect(() => box.decrypt(row.value, envContext(id, 'OTHER'))).toThrow();
      // A ciphertext copied into another sandbox's env does not decrypt there.
      await ctx.store.db
        .insertInto('sandbox_env')
        .values({ sandbox_id: other, name: 'API_TOKEN', value: row.value, updated_at: row.updated_at })
        .execute();
      ctx.app.sandboxes.forgetEnv(other);
      await expect(envOf(other)).rejects.toThrow();
      await ctx.store.db.deleteFrom('sandbox_env').where('sandbox_id', '=', other).execute();
      ctx.app.sandboxes.forgetEnv(other);

      // Destroying the sandbox drops its secrets.
      await ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}`, headers: caller.headers });
      const left = await ctx.store.db
        .selectFrom('sandbox_env')
        .select('name')
        .where('sandbox_id', '=', id)
        .execute();
      expect(left).toEqual([]);
    });

    it('rejects bad names and values with 400, and more than 200 vars in all', async () => {
      const caller = await ctx.createCaller();
      const id = await create(caller.headers);
      const url = `/v1/sandboxes/${id}/env`;
      const put = (payload: object) =>
        ctx.app.inject({ method: 'PUT', url, headers: caller.headers, payload });
      for (const payload of [
        { vars: { '1ABC': 'x' } },
        { vars: { 'A-B': 'x' } },
        { vars: { 'A B': 'x' } },
        { vars: { '': 'x' } },
        { vars: { A: 1 } },
        { vars: { A: null } },
        { vars: { A: 'x'.repeat(32_769) } },
        { vars: ['A'] },
        { A: 'x' },
        {},
      ]) {
        expectError(await put(payload), 'VALIDATION_ERROR');
      }
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `${url}/BAD-NAME`, headers: caller.headers }),
        'VALIDATION_ERROR',
      );
      const many = (from: number, count: number) =>
        Object.fromEntries(Array.from({ length: count }, (_, i) => [`V${from + i}`, 'x']));
      expect((await put({ vars: many(0, 150) })).statusCode).toBe(200);
      // Replacing existing names does not count twice.
      expect((await put({ vars: many(100, 100) })).statusCode).toBe(200);
      const over = expectError(await put({ vars: many(200, 1) }), 'VALIDATION_ERROR');
      expect(over.error.details.fields).toBeDefined();
      expect(
        (await ctx.app.inject({ method: 'GET', url, headers: caller.headers })).json().names,
      ).toHaveLength(200);
    });

    it('viewers read names but cannot change them; other workspaces get 404; scopes are checked', async () => {
      const caller = await ctx.createCaller();
      const id = await create(caller.headers, { API_TOKEN: FIRST });
      const url = `/v1/sandboxes/${id}/env`;
      const viewer = await memberHeaders(ctx, caller.workspaceId, 'viewer');
      expect((await ctx.app.inject({ method: 'GET', url, headers: viewer })).json()).toEqual({
        names: ['API_TOKEN'],
      });
      const denied = expectError(
        await ctx.app.inject({ method: 'PUT', url, headers: viewer, payload: { vars: { A: 'x' } } }),
        'FORBIDDEN',
      );
      expect(denied.error.details).toEqual({ required_role: 'developer' });
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `${url}/API_TOKEN`, headers: viewer }),
        'FORBIDDEN',
      );

      const developer = await memberHeaders(ctx, caller.workspaceId, 'developer');
      const put = await ctx.app.inject({
        method: 'PUT',
        url,
        headers: developer,
        payload: { vars: { A: 'x' } },
      });
      expect(put.statusCode).toBe(200);

      const stranger = await ctx.createCaller();
      for (const [method, path] of [
        ['GET', url],
        ['PUT', url],
        ['DELETE', `${url}/API_TOKEN`],
      ] as const) {
        expectError(
          await ctx.app.inject({
            method,
            url: path,
            headers: stranger.headers,
            ...(method === 'PUT' ? { payload: { vars: { A: 'x' } } } : {}),
          }),
          'SANDBOX_NOT_FOUND',
        );
      }
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/sandboxes/sbx_nope/env', headers: caller.headers }),
        'SANDBOX_NOT_FOUND',
      );

      const readOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:read']);
      expect((await ctx.app.inject({ method: 'GET', url, headers: readOnly })).statusCode).toBe(200);
      const scoped = expectError(
        await ctx.app.inject({ method: 'PUT', url, headers: readOnly, payload: { vars: { A: 'y' } } }),
        'FORBIDDEN',
      );
      expect(scoped.error.details).toEqual({ required_scope: 'sandbox:write' });
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `${url}/A`, headers: readOnly }),
        'FORBIDDEN',
      );
      const writeOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:write']);
      expectError(await ctx.app.inject({ method: 'GET', url, headers: writeOnly }), 'FORBIDDEN');
      // Nothing the refused callers sent was applied.
      expect((await ctx.app.inject({ method: 'GET', url, headers: caller.headers })).json()).toEqual({
        names: ['A', 'API_TOKEN'],
      });
      expect((await envOf(id)).A).toBe('x');
    });
  },
  { runtime: true },
);

describe('sandboxes: env secrets never reach a log line', () => {
  let t: TestApp;
  const lines: string[] = [];
  const key = randomBytes(32);

  beforeAll(async () => {
    t = await createTestApp({
      runtime: true,
      config: { secretsKey: key.toString('base64url') },
      logger: pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates, merges, execs and deletes with every log level on, and no value is ever logged', async () => {
    const { headers } = await ownerHeaders(t.store, t.app.audit);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers,
      payload: { env: { API_TOKEN: FIRST } },
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id as string;
    const url = `/v1/sandboxes/${id}/env`;
    const put = await t.app.inject({
      method: 'PUT',
      url,
      headers,
      payload: { vars: { SECOND_ONE: SECOND } },
    });
    expect(put.statusCode).toBe(200);
    // A refused body (bad name beside a good value) does not echo the value either.
    const refused = await t.app.inject({
      method: 'PUT',
      url,
      headers,
      payload: { vars: { OK_NAME: REPLACED, 'BAD-NAME': REPLACED } },
    });
    expectError(refused, 'VALIDATION_ERROR');
    expect(refused.body).not.toContain(REPLACED);
    expect((await t.app.inject({ method: 'GET', url, headers })).json()).toEqual({
      names: ['API_TOKEN', 'SECOND_ONE'],
    });
    const env = await t.app.sandboxes.envFor(id);
    const out = await runIn(t.engine!.runtime, id, 'sh', ['-c', 'echo "$API_TOKEN $SECOND_ONE"'], env);
    expect(out.stdout).toBe(`${FIRST} ${SECOND}\n`);
    // Through the HTTP exec route too: the secrets are in the command's env, and the command's
    // output (which here prints them) is answered to the caller but never logged.
    const exec = await t.app.inject({
      method: 'POST',
      url: `/v1/sandboxes/${id}/exec`,
      headers,
      payload: { command: 'sh', args: ['-c', 'echo "$API_TOKEN $SECOND_ONE"'] },
    });
    expect(exec.statusCode, exec.body).toBe(200);
    expect(exec.json().stdout).toBe(`${FIRST} ${SECOND}\n`);
    // The caller's own env wins over a secret of the same name.
    const overridden = await t.app.inject({
      method: 'POST',
      url: `/v1/sandboxes/${id}/exec`,
      headers,
      payload: { command: 'printenv', args: ['API_TOKEN'], env: { API_TOKEN: 'mine' } },
    });
    expect(overridden.json().stdout).toBe('mine\n');
    expect((await t.app.inject({ method: 'DELETE', url: `${url}/API_TOKEN`, headers })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}`, headers })).statusCode).toBe(
      204,
    );

    const text = lines.join('');
    // The capture works (every request was logged) and nothing was filtered out by level.
    expect(t.app.log.level).toBe('trace');
    expect(text).toContain(`/v1/sandboxes/${id}/env`);
    for (const value of [FIRST, SECOND, REPLACED]) expect(text).not.toContain(value);
  });

  it('encrypts with the configured key, and writes no key file', async () => {
    const { headers } = await ownerHeaders(t.store, t.app.audit);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers,
      payload: { env: { API_TOKEN: FIRST } },
    });
    const id = created.json().id as string;
    const row = await t.store.db
      .selectFrom('sandbox_env')
      .select('value')
      .where('sandbox_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(new SecretBox(key).decrypt(row.value, envContext(id, 'API_TOKEN'))).toBe(FIRST);
    expect(() => new SecretBox(randomBytes(32)).decrypt(row.value, envContext(id, 'API_TOKEN'))).toThrow();
    expect(() => statSync(join(t.config.dataDir, 'secrets', 'env.key'))).toThrow();
  });
});

describe('sandboxes: env secrets key file', () => {
  it('generates <data>/secrets/env.key with mode 0600 and decrypts with it after a restart', async () => {
    const first = await createTestApp({});
    try {
      const file = join(first.config.dataDir, 'secrets', 'env.key');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const value = first.app.sandboxes.secrets.encrypt(FIRST, envContext('sbx_x', 'A'));
      // A second app on the same data directory (a restart) reads the same key.
      const again = await buildApp({
        config: first.config,
        store: first.store,
        logger: pino({ level: 'silent' }),
      });
      try {
        expect(again.sandboxes.secrets.decrypt(value, envContext('sbx_x', 'A'))).toBe(FIRST);
      } finally {
        await again.close();
      }
    } finally {
      await first.close();
    }
  });
});
