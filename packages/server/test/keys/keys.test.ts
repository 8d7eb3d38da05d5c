import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/services/keys.js';
import { asSession, bearer, createKey, expectError, registerAccount } from '../auth/helpers.js';
import { describeStores } from '../support/app.js';

describeStores('keys: /v1/account/keys', (ctx) => {
  describe('POST /v1/account/keys', () => {
    it('creates a key shown once, stored only as a SHA-256 hash and a prefix', async () => {
      const account = await registerAccount(ctx.app, 'kcreate');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: asSession(account),
        payload: { name: 'ci', scopes: ['sandbox:read', 'sandbox:exec'] },
      });
      expect(response.statusCode, response.body).toBe(201);
      const body = response.json();
      expect(body.key).toMatch(/^crl_sk_[A-Za-z0-9_-]{43}$/);
      expect(body).toMatchObject({
        name: 'ci',
        prefix: body.key.slice(0, 12),
        scopes: ['sandbox:read', 'sandbox:exec'],
        workspace_id: account.workspaceId,
        last_used_at: null,
        expires_at: null,
        revoked_at: null,
      });
      expect(body.id).toMatch(/^key_/);
      expect(body).not.toHaveProperty('hash');
      const row = await ctx.store.db
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', body.id)
        .executeTakeFirstOrThrow();
      expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row.prefix).toBe(body.key.slice(0, 12));
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('target_id', '=', body.id)
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({ action: 'api_key.create', actor_type: 'user', actor_id: account.userId });
      expect(event.ip).toBeTruthy();
    });

    it('defaults to the caller scopes (`*` for a session) and accepts a future expiry', async () => {
      const account = await registerAccount(ctx.app, 'kdefault');
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const key = await createKey(ctx.app, account, { expires_at: expiresAt });
      expect(key.scopes).toEqual(['*']);
      expect((key as unknown as { expires_at: string }).expires_at).toBe(expiresAt);
    });

    it('lets a key mint a narrower key but never a broader one (403 naming the scope)', async () => {
      const account = await registerAccount(ctx.app, 'kmint');
      const parent = await createKey(ctx.app, account, { scopes: ['sandbox:*', 'workspace:admin'] });
      const narrower = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: bearer(parent.key),
        payload: { name: 'child', scopes: ['sandbox:read'] },
      });
      expect(narrower.statusCode, narrower.body).toBe(201);
      expect(narrower.json().workspace_id).toBe(account.workspaceId);
      const inherited = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: bearer(parent.key),
        payload: { name: 'child2' },
      });
      expect(inherited.json().scopes).toEqual(['sandbox:*', 'workspace:admin']);
      for (const scope of ['*', 'billing:*', 'snapshot:read']) {
        const broader = await ctx.app.inject({
          method: 'POST',
          url: '/v1/account/keys',
          headers: bearer(parent.key),
          payload: { name: 'wider', scopes: ['sandbox:read', scope] },
        });
        expect(expectError(broader, 403, 'FORBIDDEN')).toEqual({ required_scope: scope });
      }
    });

    it('creates keys for another workspace the user belongs to, never for one they do not (404)', async () => {
      const account = await registerAccount(ctx.app, 'kws');
      const team = await ctx.createWorkspace(account.userId, { name: 'team' });
      const ok = await createKey(ctx.app, account, { workspace_id: team.id });
      expect(ok.workspace_id).toBe(team.id);
      const stranger = await registerAccount(ctx.app, 'kws-stranger');
      const foreign = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: asSession(account),
        payload: { name: 'x', workspace_id: stranger.workspaceId },
      });
      expectError(foreign, 404, 'WORKSPACE_NOT_FOUND');
      const unknown = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: asSession(account),
        payload: { name: 'x', workspace_id: 'ws_doesnotexist' },
      });
      expectError(unknown, 404, 'WORKSPACE_NOT_FOUND');
      // A key acts in its own workspace only, even for another workspace of the same user.
      const teamKey = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: bearer(ok.key),
        payload: { name: 'x', workspace_id: account.workspaceId },
      });
      expectError(teamKey, 404, 'WORKSPACE_NOT_FOUND');
    });

    it.each([
      ['no name', {}],
      ['empty name', { name: '' }],
      ['unknown scope', { name: 'x', scopes: ['root'] }],
      ['unknown resource scope', { name: 'x', scopes: ['pizza:*'] }],
      ['scopes not an array', { name: 'x', scopes: 'sandbox:read' }],
      ['past expiry', { name: 'x', expires_at: '2020-01-01T00:00:00Z' }],
      ['bad expiry', { name: 'x', expires_at: 'tomorrow' }],
      ['unknown field', { name: 'x', admin: true }],
    ])('answers 400 VALIDATION_ERROR for %s', async (_name, payload) => {
      const account = await registerAccount(ctx.app, 'kbad');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: asSession(account),
        payload,
      });
      expectError(response, 400, 'VALIDATION_ERROR');
    });

    it('needs credentials (401) and, with a cookie, the CSRF token (403)', async () => {
      const account = await registerAccount(ctx.app, 'kauth');
      const none = await ctx.app.inject({ method: 'POST', url: '/v1/account/keys', payload: { name: 'x' } });
      expectError(none, 401, 'UNAUTHORIZED');
      const noCsrf = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/keys',
        headers: { cookie: account.cookie },
        payload: { name: 'x' },
      });
      expectError(noCsrf, 403, 'FORBIDDEN');
    });
  });

  describe('GET /v1/account/keys', () => {
    it('lists the caller keys with prefix and metadata, never the secret or its hash', async () => {
      const account = await registerAccount(ctx.app, 'klist');
      const a = await createKey(ctx.app, account, { name: 'a' });
      const b = await createKey(ctx.app, account, { name: 'b', scopes: ['sandbox:read'] });
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys',
        headers: { cookie: account.cookie },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.data.map((k: { id: string }) => k.id)).toEqual([b.id, a.id]);
      expect(body.next_cursor).toBeNull();
      expect(response.body).not.toContain(a.key);
      expect(response.body).not.toContain(b.key);
      for (const key of body.data) {
        expect(Object.keys(key).sort()).toEqual([
          'created_at',
          'expires_at',
          'id',
          'last_used_at',
          'name',
          'prefix',
          'revoked_at',
          'scopes',
          'workspace_id',
        ]);
      }
    });

    it('pages with limit and cursor, and rejects a bad cursor or limit', async () => {
      const account = await registerAccount(ctx.app, 'kpage');
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await createKey(ctx.app, account, { name: `k${i}` })).id);
      const first = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys?limit=2',
        headers: { cookie: account.cookie },
      });
      const page1 = first.json();
      expect(page1.data).toHaveLength(2);
      expect(page1.next_cursor).toBeTruthy();
      const second = await ctx.app.inject({
        method: 'GET',
        url: `/v1/account/keys?limit=2&cursor=${page1.next_cursor}`,
        headers: { cookie: account.cookie },
      });
      const page2 = second.json();
      expect([...page1.data, ...page2.data].map((k: { id: string }) => k.id).sort()).toEqual(ids.sort());
      expect(page2.next_cursor).toBeNull();
      const badCursor = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys?cursor=%%%',
        headers: { cookie: account.cookie },
      });
      expectError(badCursor, 400, 'VALIDATION_ERROR');
      const badLimit = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys?limit=501',
        headers: { cookie: account.cookie },
      });
      expectError(badLimit, 400, 'VALIDATION_ERROR');
    });

    it("shows a key only its own workspace's keys, and nobody else's keys", async () => {
      const account = await registerAccount(ctx.app, 'kscope');
      const team = await ctx.createWorkspace(account.userId);
      const personal = await createKey(ctx.app, account);
      const teamKey = await createKey(ctx.app, account, { workspace_id: team.id });
      const viaTeam = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys',
        headers: bearer(teamKey.key),
      });
      expect(viaTeam.json().data.map((k: { id: string }) => k.id)).toEqual([teamKey.id]);
      const other = await registerAccount(ctx.app, 'kscope-other');
      const theirs = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys',
        headers: { cookie: other.cookie },
      });
      expect(theirs.json().data).toEqual([]);
      void personal;
    });

    it('needs credentials', async () => {
      expectError(await ctx.app.inject({ method: 'GET', url: '/v1/account/keys' }), 401, 'UNAUTHORIZED');
    });
  });

  describe('DELETE /v1/account/keys/{id}', () => {
    it('revokes: the key fails on its very next request, and so do its JWTs', async () => {
      const account = await registerAccount(ctx.app, 'krevoke');
      const key = await createKey(ctx.app, account);
      const token = (
        await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: key.key } })
      ).json().token as string;
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) })).statusCode,
      ).toBe(200);
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) })).statusCode,
      ).toBe(200);
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${key.id}`,
        headers: asSession(account),
      });
      expect(response.statusCode, response.body).toBe(204);
      expect(response.body).toBe('');
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: '/v1/auth/me',
          headers: { authorization: `ApiKey ${key.key}` },
        }),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) }),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: key.key } }),
        401,
        'UNAUTHORIZED',
      );
      const list = await ctx.app.inject({
        method: 'GET',
        url: '/v1/account/keys',
        headers: { cookie: account.cookie },
      });
      expect(list.json().data.map((k: { id: string }) => k.id)).not.toContain(key.id);
      const again = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${key.id}`,
        headers: asSession(account),
      });
      expectError(again, 404, 'KEY_NOT_FOUND');
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('target_id', '=', key.id)
        .where('action', '=', 'api_key.revoke')
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({
        actor_type: 'user',
        actor_id: account.userId,
        workspace_id: account.workspaceId,
      });
    });

    it('lets a key revoke itself', async () => {
      const account = await registerAccount(ctx.app, 'kself');
      const key = await createKey(ctx.app, account);
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${key.id}`,
        headers: bearer(key.key),
      });
      expect(response.statusCode).toBe(204);
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }),
        401,
        'UNAUTHORIZED',
      );
    });

    it("answers 404 for an unknown id and for someone else's key (which keeps working)", async () => {
      const account = await registerAccount(ctx.app, 'kforeign');
      const other = await registerAccount(ctx.app, 'kforeign-other');
      const theirs = await createKey(ctx.app, other);
      const foreign = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${theirs.id}`,
        headers: asSession(account),
      });
      expectError(foreign, 404, 'KEY_NOT_FOUND');
      const unknown = await ctx.app.inject({
        method: 'DELETE',
        url: '/v1/account/keys/key_nope',
        headers: asSession(account),
      });
      expectError(unknown, 404, 'KEY_NOT_FOUND');
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(theirs.key) })).statusCode,
      ).toBe(200);
      // A key of the user's other workspace is invisible to a key of this one.
      const team = await ctx.createWorkspace(account.userId);
      const teamKey = await createKey(ctx.app, account, { workspace_id: team.id });
      const personalKey = await createKey(ctx.app, account);
      const cross = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${teamKey.id}`,
        headers: bearer(personalKey.key),
      });
      expectError(cross, 404, 'KEY_NOT_FOUND');
    });

    it('needs credentials (401) and, with a cookie, the CSRF token (403)', async () => {
      const account = await registerAccount(ctx.app, 'kdelauth');
      const key = await createKey(ctx.app, account);
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `/v1/account/keys/${key.id}` }),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/account/keys/${key.id}`,
          headers: { cookie: account.cookie },
        }),
        403,
        'FORBIDDEN',
      );
    });
  });

  describe('key lifecycle', () => {
    it('an expired key fails', async () => {
      const account = await registerAccount(ctx.app, 'kexpired');
      const key = await createKey(ctx.app, account, {
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      });
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) })).statusCode,
      ).toBe(200);
      await ctx.store.db
        .updateTable('api_keys')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('id', '=', key.id)
        .execute();
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('updates last_used_at at most once a minute', async () => {
      const account = await registerAccount(ctx.app, 'klastused');
      const key = await createKey(ctx.app, account);
      const lastUsed = async () =>
        (
          await ctx.store.db
            .selectFrom('api_keys')
            .select('last_used_at')
            .where('id', '=', key.id)
            .executeTakeFirstOrThrow()
        ).last_used_at;
      expect(await lastUsed()).toBeNull();
      await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      const first = await lastUsed();
      expect(first).not.toBeNull();
      await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      expect(await lastUsed()).toBe(first);
      const old = new Date(Date.now() - 61_000).toISOString();
      await ctx.store.db
        .updateTable('api_keys')
        .set({ last_used_at: old })
        .where('id', '=', key.id)
        .execute();
      await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      expect(Date.parse((await lastUsed())!)).toBeGreaterThan(Date.parse(old));
    });

    it("sees its user's role, name and workspace change on the very next request", async () => {
      const owner = await registerAccount(ctx.app, 'krole-owner');
      const member = await registerAccount(ctx.app, 'krole-member');
      await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${owner.workspaceId}/members`,
        headers: asSession(owner),
        payload: { user_id: member.userId, role: 'maintainer' },
      });
      const key = await createKey(ctx.app, member, { workspace_id: owner.workspaceId });
      const read = () =>
        ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${owner.workspaceId}`,
          headers: bearer(key.key),
        });
      expect((await read()).json()).toMatchObject({ role: 'maintainer' });
      const changed = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/workspaces/${owner.workspaceId}/members/${member.userId}`,
        headers: asSession(owner),
        payload: { role: 'viewer' },
      });
      expect(changed.statusCode, changed.body).toBe(200);
      await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/workspaces/${owner.workspaceId}`,
        headers: asSession(owner),
        payload: { name: 'Renamed for the key' },
      });
      expect((await read()).json()).toMatchObject({ role: 'viewer', name: 'Renamed for the key' });
      const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      expect(me.json().workspaces).toEqual([
        expect.objectContaining({ id: owner.workspaceId, role: 'viewer', name: 'Renamed for the key' }),
      ]);
      expect(me.json().user).toMatchObject({ id: member.userId, email: member.email });
    });

    it("stops working when its user leaves the key's workspace", async () => {
      const owner = await registerAccount(ctx.app, 'kleave-owner');
      const member = await registerAccount(ctx.app, 'kleave-member');
      await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${owner.workspaceId}/members`,
        headers: asSession(owner),
        payload: { user_id: member.userId, role: 'developer' },
      });
      const key = await createKey(ctx.app, member, { workspace_id: owner.workspaceId });
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) })).statusCode,
      ).toBe(200);
      const removed = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/workspaces/${owner.workspaceId}/members/${member.userId}`,
        headers: asSession(owner),
      });
      expect(removed.statusCode).toBe(204);
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('createApiKey (bootstrap) mints a working `*` key recorded as a system action', async () => {
      const user = await ctx.createUser();
      const ws = await ctx.createWorkspace(user.id, { personal: true });
      const created = await createApiKey(ctx.app, {
        userId: user.id,
        workspaceId: ws.id,
        name: 'admin',
        scopes: ['*'],
      });
      expect(created.key).toMatch(/^crl_sk_/);
      const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(created.key) });
      expect(me.json().auth).toMatchObject({ kind: 'key', scopes: ['*'], workspace_id: ws.id });
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('target_id', '=', created.id)
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({ actor_type: 'system', action: 'api_key.create' });
    });

    it('the raw key, the session token and the password appear nowhere in the database', async () => {
      const account = await registerAccount(ctx.app, 'kscan', 'scan-me password 42');
      const key = await createKey(ctx.app, account, { name: 'scan' });
      const token = (
        await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: key.key } })
      ).json().token;
      await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      const secrets = [
        key.key,
        key.key.slice(12),
        account.cookie.split('=')[1]!,
        'scan-me password 42',
        token,
      ];
      const tables = ['users', 'workspaces', 'members', 'api_keys', 'sessions', 'audit_events'] as const;
      let rows = 0;
      for (const table of tables) {
        const result = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(
          ctx.store.db,
        );
        const text = JSON.stringify(result.rows);
        rows += result.rows.length;
        for (const secret of secrets) expect(text, `${table} contains a secret`).not.toContain(secret);
      }
      expect(rows).toBeGreaterThan(5);
    });
  });
});
