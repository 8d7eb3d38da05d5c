import { describe, expect, it } from 'vitest';
import { type Account, asSession, bearer, createKey, expectError, registerAccount } from '../auth/helpers.js';
import { describeStores, type StoreContext } from '../support/app.js';

/** An owner with a team workspace holding one member of each other role. */
async function team(ctx: StoreContext, tag: string) {
  const owner = await registerAccount(ctx.app, `${tag}-owner`);
  const created = await ctx.app.inject({
    method: 'POST',
    url: '/v1/workspaces',
    headers: asSession(owner),
    payload: { name: `${tag} team` },
  });
  expect(created.statusCode, created.body).toBe(201);
  const wsId: string = created.json().id;
  const members: Record<'maintainer' | 'developer' | 'viewer', Account> = {} as never;
  for (const role of ['maintainer', 'developer', 'viewer'] as const) {
    const account = await registerAccount(ctx.app, `${tag}-${role}`);
    const added = await ctx.app.inject({
      method: 'POST',
      url: `/v1/workspaces/${wsId}/members`,
      headers: asSession(owner),
      payload: { user_id: account.userId, role },
    });
    expect(added.statusCode, added.body).toBe(201);
    members[role] = account;
  }
  return { wsId, owner, ...members };
}

async function auditActions(ctx: StoreContext, workspaceId: string): Promise<string[]> {
  const rows = await ctx.store.db
    .selectFrom('audit_events')
    .select('action')
    .where('workspace_id', '=', workspaceId)
    .orderBy('created_at', 'asc')
    .execute();
  return rows.map((r) => r.action);
}

describeStores('workspaces: /v1/workspaces', (ctx) => {
  describe('GET, POST /v1/workspaces', () => {
    it('creates a workspace owned by the caller and lists it with the role', async () => {
      const account = await registerAccount(ctx.app, 'wscreate');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/workspaces',
        headers: asSession(account),
        payload: { name: '  Acme  ' },
      });
      expect(response.statusCode, response.body).toBe(201);
      const ws = response.json();
      expect(ws).toMatchObject({
        name: 'Acme',
        plan: 'team',
        personal: false,
        role: 'owner',
        created_by: account.userId,
      });
      expect(ws.id).toMatch(/^ws_/);
      const list = await ctx.app.inject({
        method: 'GET',
        url: '/v1/workspaces',
        headers: { cookie: account.cookie },
      });
      expect(list.statusCode).toBe(200);
      const ids = list.json().data.map((w: { id: string }) => w.id);
      expect(ids.sort()).toEqual([ws.id, account.workspaceId].sort());
      expect(list.json().next_cursor).toBeNull();
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('target_id', '=', ws.id)
        .where('action', '=', 'workspace.create')
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({ actor_type: 'user', actor_id: account.userId, workspace_id: ws.id });
      expect(event.ip).toBeTruthy();
    });

    it("lists only the key's workspace for a key, and not others' workspaces", async () => {
      const account = await registerAccount(ctx.app, 'wslistkey');
      const other = await ctx.createWorkspace(account.userId);
      const key = await createKey(ctx.app, account);
      const list = await ctx.app.inject({ method: 'GET', url: '/v1/workspaces', headers: bearer(key.key) });
      expect(list.json().data.map((w: { id: string }) => w.id)).toEqual([account.workspaceId]);
      const stranger = await registerAccount(ctx.app, 'wslistkey-stranger');
      const theirs = await ctx.app.inject({
        method: 'GET',
        url: '/v1/workspaces',
        headers: { cookie: stranger.cookie },
      });
      expect(theirs.json().data.map((w: { id: string }) => w.id)).toEqual([stranger.workspaceId]);
      void other;
    });

    it('needs workspace:admin for a key to create (403 naming it)', async () => {
      const account = await registerAccount(ctx.app, 'wscreatekey');
      const key = await createKey(ctx.app, account, { scopes: ['sandbox:*'] });
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/workspaces',
        headers: bearer(key.key),
        payload: { name: 'x' },
      });
      expect(expectError(response, 403, 'FORBIDDEN')).toEqual({ required_scope: 'workspace:admin' });
    });

    it.each([
      [{}],
      [{ name: '' }],
      [{ name: '   ' }],
      [{ name: 'x', plan: 'pro' }],
      [{ name: 'x'.repeat(201) }],
    ])('answers 400 VALIDATION_ERROR for %j', async (payload) => {
      const account = await registerAccount(ctx.app, 'wsbad');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/workspaces',
        headers: asSession(account),
        payload,
      });
      expectError(response, 400, 'VALIDATION_ERROR');
    });

    it('needs credentials', async () => {
      expectError(await ctx.app.inject({ method: 'GET', url: '/v1/workspaces' }), 401, 'UNAUTHORIZED');
      expectError(
        await ctx.app.inject({ method: 'POST', url: '/v1/workspaces', payload: { name: 'x' } }),
        401,
        'UNAUTHORIZED',
      );
    });
  });

  describe('GET, PATCH, DELETE /v1/workspaces/{id}', () => {
    it('any member reads; a stranger, a key of another workspace and an unknown id get 404', async () => {
      const t = await team(ctx, 'wsget');
      for (const account of [t.owner, t.maintainer, t.developer, t.viewer]) {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}`,
          headers: { cookie: account.cookie },
        });
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ id: t.wsId, personal: false });
      }
      const viewerView = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}`,
        headers: { cookie: t.viewer.cookie },
      });
      expect(viewerView.json().role).toBe('viewer');
      const stranger = await registerAccount(ctx.app, 'wsget-stranger');
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}`,
          headers: { cookie: stranger.cookie },
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      const personalKey = await createKey(ctx.app, t.owner);
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}`,
          headers: bearer(personalKey.key),
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: '/v1/workspaces/ws_unknown',
          headers: { cookie: t.owner.cookie },
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/workspaces/${t.wsId}` }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('maintainers and owners rename; developers and viewers get 403; bad input 400', async () => {
      const t = await team(ctx, 'wspatch');
      const patch = (account: Account, payload: unknown) =>
        ctx.app.inject({
          method: 'PATCH',
          url: `/v1/workspaces/${t.wsId}`,
          headers: asSession(account),
          payload: payload as object,
        });
      const ok = await patch(t.maintainer, { name: 'Renamed' });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ name: 'Renamed', role: 'maintainer' });
      for (const account of [t.developer, t.viewer]) {
        expect(expectError(await patch(account, { name: 'Nope' }), 403, 'FORBIDDEN')).toEqual({
          required_role: 'maintainer',
        });
      }
      expectError(await patch(t.owner, { name: '' }), 400, 'VALIDATION_ERROR');
      expectError(await patch(t.owner, { plan: 'free' }), 400, 'VALIDATION_ERROR');
      const stranger = await registerAccount(ctx.app, 'wspatch-stranger');
      expectError(await patch(stranger, { name: 'x' }), 404, 'WORKSPACE_NOT_FOUND');
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}`,
        headers: { cookie: t.owner.cookie },
      });
      expect(got.json().name).toBe('Renamed');
      expect(await auditActions(ctx, t.wsId)).toContain('workspace.update');
    });

    it('needs workspace:admin for a key to rename, even for its own workspace', async () => {
      const account = await registerAccount(ctx.app, 'wspatchkey');
      const reader = await createKey(ctx.app, account, { scopes: ['sandbox:read'] });
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/workspaces/${account.workspaceId}`,
        headers: bearer(reader.key),
        payload: { name: 'x' },
      });
      expect(expectError(response, 403, 'FORBIDDEN')).toEqual({ required_scope: 'workspace:admin' });
      const admin = await createKey(ctx.app, account, { scopes: ['workspace:admin'] });
      const ok = await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/workspaces/${account.workspaceId}`,
        headers: bearer(admin.key),
        payload: { name: 'by key' },
      });
      expect(ok.statusCode).toBe(200);
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('target_id', '=', account.workspaceId)
        .where('action', '=', 'workspace.update')
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({ actor_type: 'key', actor_id: admin.id });
    });

    it('only owners delete (soft); a deleted workspace is gone for everyone; personal ones cannot be deleted', async () => {
      const t = await team(ctx, 'wsdel');
      const del = (account: Account, id = t.wsId) =>
        ctx.app.inject({ method: 'DELETE', url: `/v1/workspaces/${id}`, headers: asSession(account) });
      expect(expectError(await del(t.maintainer), 403, 'FORBIDDEN')).toEqual({ required_role: 'owner' });
      expectError(await del(t.viewer), 403, 'FORBIDDEN');
      expect(expectError(await del(t.owner, t.owner.workspaceId), 409, 'CONFLICT')).toEqual({
        reason: 'personal_workspace',
      });
      const ok = await del(t.owner);
      expect(ok.statusCode, ok.body).toBe(204);
      const row = await ctx.store.db
        .selectFrom('workspaces')
        .selectAll()
        .where('id', '=', t.wsId)
        .executeTakeFirstOrThrow();
      expect(row.deleted_at).not.toBeNull();
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}`,
          headers: { cookie: t.owner.cookie },
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expectError(await del(t.owner), 404, 'WORKSPACE_NOT_FOUND');
      const list = await ctx.app.inject({
        method: 'GET',
        url: '/v1/workspaces',
        headers: { cookie: t.viewer.cookie },
      });
      expect(list.json().data.map((w: { id: string }) => w.id)).not.toContain(t.wsId);
      expect(await auditActions(ctx, t.wsId)).toContain('workspace.delete');
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `/v1/workspaces/${t.wsId}` }),
        401,
        'UNAUTHORIZED',
      );
    });
  });

  describe('members', () => {
    it('lists members with roles for any member; 404 for strangers', async () => {
      const t = await team(ctx, 'mlist');
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}/members`,
        headers: { cookie: t.viewer.cookie },
      });
      expect(response.statusCode).toBe(200);
      const roles = Object.fromEntries(
        response.json().data.map((m: { user_id: string; role: string }) => [m.user_id, m.role]),
      );
      expect(roles).toEqual({
        [t.owner.userId]: 'owner',
        [t.maintainer.userId]: 'maintainer',
        [t.developer.userId]: 'developer',
        [t.viewer.userId]: 'viewer',
      });
      expect(response.json().data[0]).toMatchObject({ email: t.owner.email });
      const page = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}/members?limit=3`,
        headers: { cookie: t.viewer.cookie },
      });
      expect(page.json().data).toHaveLength(3);
      const rest = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}/members?limit=3&cursor=${page.json().next_cursor}`,
        headers: { cookie: t.viewer.cookie },
      });
      expect(rest.json().data).toHaveLength(1);
      const stranger = await registerAccount(ctx.app, 'mlist-stranger');
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}/members`,
          headers: { cookie: stranger.cookie },
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/workspaces/${t.wsId}/members` }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('maintainers add members (by id or email) but cannot grant owner; developers cannot add', async () => {
      const t = await team(ctx, 'madd');
      const add = (account: Account, payload: object) =>
        ctx.app.inject({
          method: 'POST',
          url: `/v1/workspaces/${t.wsId}/members`,
          headers: asSession(account),
          payload,
        });
      const newcomer = await registerAccount(ctx.app, 'madd-new');
      const byEmail = await add(t.maintainer, { email: newcomer.email.toUpperCase(), role: 'developer' });
      expect(byEmail.statusCode, byEmail.body).toBe(201);
      expect(byEmail.json()).toMatchObject({
        user_id: newcomer.userId,
        role: 'developer',
        email: newcomer.email,
      });
      expectError(await add(t.maintainer, { user_id: newcomer.userId, role: 'viewer' }), 409, 'CONFLICT');
      const another = await registerAccount(ctx.app, 'madd-another');
      expect(
        expectError(await add(t.maintainer, { user_id: another.userId, role: 'owner' }), 403, 'FORBIDDEN'),
      ).toMatchObject({
        required_role: 'owner',
      });
      expect(
        expectError(await add(t.developer, { user_id: another.userId, role: 'viewer' }), 403, 'FORBIDDEN'),
      ).toEqual({
        required_role: 'maintainer',
      });
      expectError(await add(t.owner, { user_id: 'usr_nobody', role: 'viewer' }), 404, 'USER_NOT_FOUND');
      expectError(
        await add(t.owner, { email: 'nobody@example.test', role: 'viewer' }),
        404,
        'USER_NOT_FOUND',
      );
      expectError(await add(t.owner, { user_id: another.userId, role: 'admin' }), 400, 'VALIDATION_ERROR');
      expectError(await add(t.owner, { user_id: another.userId }), 400, 'VALIDATION_ERROR');
      expectError(await add(t.owner, { role: 'viewer' }), 400, 'VALIDATION_ERROR');
      const asOwner = await add(t.owner, { user_id: another.userId, role: 'owner' });
      expect(asOwner.statusCode).toBe(201);
      const stranger = await registerAccount(ctx.app, 'madd-stranger');
      expectError(
        await add(stranger, { user_id: stranger.userId, role: 'owner' }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expect(await auditActions(ctx, t.wsId)).toContain('member.add');
    });

    it('enforces the plan member cap (403 PLAN_LIMIT)', async () => {
      const owner = await registerAccount(ctx.app, 'mcap');
      const free = await ctx.createWorkspace(owner.userId, { plan: 'free' });
      const other = await registerAccount(ctx.app, 'mcap-other');
      const response = await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${free.id}/members`,
        headers: asSession(owner),
        payload: { user_id: other.userId, role: 'viewer' },
      });
      expectError(response, 403, 'PLAN_LIMIT');
    });

    it('owners change roles; others cannot; the last owner cannot be demoted (409)', async () => {
      const t = await team(ctx, 'mrole');
      const put = (account: Account, userId: string, role: string) =>
        ctx.app.inject({
          method: 'PUT',
          url: `/v1/workspaces/${t.wsId}/members/${userId}`,
          headers: asSession(account),
          payload: { role },
        });
      const promoted = await put(t.owner, t.developer.userId, 'maintainer');
      expect(promoted.statusCode, promoted.body).toBe(200);
      expect(promoted.json()).toMatchObject({ user_id: t.developer.userId, role: 'maintainer' });
      expect(expectError(await put(t.maintainer, t.viewer.userId, 'developer'), 403, 'FORBIDDEN')).toEqual({
        required_role: 'owner',
      });
      expect(expectError(await put(t.owner, t.owner.userId, 'viewer'), 409, 'CONFLICT')).toEqual({
        reason: 'last_owner',
      });
      expectError(await put(t.owner, 'usr_nobody', 'viewer'), 404, 'MEMBER_NOT_FOUND');
      expectError(await put(t.owner, t.viewer.userId, 'superuser'), 400, 'VALIDATION_ERROR');
      // With a second owner, the first may step down.
      expect((await put(t.owner, t.maintainer.userId, 'owner')).statusCode).toBe(200);
      const stepDown = await put(t.owner, t.owner.userId, 'developer');
      expect(stepDown.statusCode).toBe(200);
      expectError(await put(t.owner, t.viewer.userId, 'developer'), 403, 'FORBIDDEN');
      const stranger = await registerAccount(ctx.app, 'mrole-stranger');
      expectError(await put(stranger, t.viewer.userId, 'owner'), 404, 'WORKSPACE_NOT_FOUND');
      expect(await auditActions(ctx, t.wsId)).toContain('member.update');
      expectError(
        await ctx.app.inject({
          method: 'PUT',
          url: `/v1/workspaces/${t.wsId}/members/${t.viewer.userId}`,
          payload: { role: 'owner' },
        }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('owners remove members, anyone may leave, the last owner cannot be removed (409)', async () => {
      const t = await team(ctx, 'mrm');
      const del = (account: Account, userId: string) =>
        ctx.app.inject({
          method: 'DELETE',
          url: `/v1/workspaces/${t.wsId}/members/${userId}`,
          headers: asSession(account),
        });
      expect(expectError(await del(t.maintainer, t.viewer.userId), 403, 'FORBIDDEN')).toEqual({
        required_role: 'owner',
      });
      expect((await del(t.owner, t.viewer.userId)).statusCode).toBe(204);
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/workspaces/${t.wsId}`,
          headers: { cookie: t.viewer.cookie },
        }),
        404,
        'WORKSPACE_NOT_FOUND',
      );
      expect((await del(t.developer, t.developer.userId)).statusCode).toBe(204);
      expectError(await del(t.owner, t.developer.userId), 404, 'MEMBER_NOT_FOUND');
      expect(expectError(await del(t.owner, t.owner.userId), 409, 'CONFLICT')).toEqual({
        reason: 'last_owner',
      });
      expect(await auditActions(ctx, t.wsId)).toContain('member.remove');
      expectError(
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/workspaces/${t.wsId}/members/${t.maintainer.userId}`,
        }),
        401,
        'UNAUTHORIZED',
      );
    });

    it('keys need workspace:admin to change members and act only in their own workspace', async () => {
      const t = await team(ctx, 'mkey');
      const ownerTeamKey = await createKey(ctx.app, t.owner, { workspace_id: t.wsId, scopes: ['sandbox:*'] });
      const newcomer = await registerAccount(ctx.app, 'mkey-new');
      const noScope = await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${t.wsId}/members`,
        headers: bearer(ownerTeamKey.key),
        payload: { user_id: newcomer.userId, role: 'viewer' },
      });
      expect(expectError(noScope, 403, 'FORBIDDEN')).toEqual({ required_scope: 'workspace:admin' });
      const readable = await ctx.app.inject({
        method: 'GET',
        url: `/v1/workspaces/${t.wsId}/members`,
        headers: bearer(ownerTeamKey.key),
      });
      expect(readable.statusCode).toBe(200);
      const personalAdmin = await createKey(ctx.app, t.owner, { scopes: ['workspace:admin'] });
      const otherWorkspace = await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${t.wsId}/members`,
        headers: bearer(personalAdmin.key),
        payload: { user_id: newcomer.userId, role: 'viewer' },
      });
      expectError(otherWorkspace, 404, 'WORKSPACE_NOT_FOUND');
      const teamAdmin = await createKey(ctx.app, t.owner, {
        workspace_id: t.wsId,
        scopes: ['workspace:admin'],
      });
      const ok = await ctx.app.inject({
        method: 'POST',
        url: `/v1/workspaces/${t.wsId}/members`,
        headers: bearer(teamAdmin.key),
        payload: { user_id: newcomer.userId, role: 'viewer' },
      });
      expect(ok.statusCode, ok.body).toBe(201);
      // A viewer's key with workspace:admin is still only a viewer.
      const viewerKey = await createKey(ctx.app, t.viewer, {
        workspace_id: t.wsId,
        scopes: ['workspace:admin'],
      });
      const viewerAdd = await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/workspaces/${t.wsId}`,
        headers: bearer(viewerKey.key),
        payload: { name: 'x' },
      });
      expectError(viewerAdd, 403, 'FORBIDDEN');
    });
  });
});
