import { expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { snapshotsOf } from '../../src/services/snapshots.js';
import { isoNow } from '../../src/store/index.js';
import { describeStores, expectError } from '../support/app.js';
import { createSandbox, keyHeaders, memberKey, snapshot } from './helpers.js';

describeStores(
  'snapshots: permissions, bad input, plan cap',
  (ctx) => {
    it('viewers read and download but cannot create, restore or delete; developers can', async () => {
      const owner = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, owner.headers);
      const snap = (await snapshot(ctx, owner.headers, sandbox.id)).json();
      const viewer = await memberKey(ctx, owner.workspaceId, 'viewer');
      for (const url of [
        `/v1/sandboxes/${sandbox.id}/snapshots`,
        `/v1/snapshots/${snap.id}`,
        `/v1/snapshots/${snap.id}/download`,
      ]) {
        const res = await ctx.app.inject({ method: 'GET', url, headers: viewer });
        expect(res.statusCode, `${url} ${res.body}`).toBe(200);
      }
      const writes = [
        { method: 'POST', url: `/v1/sandboxes/${sandbox.id}/snapshots`, payload: {} },
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: { sandbox_id: sandbox.id } },
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: {} },
        { method: 'DELETE', url: `/v1/snapshots/${snap.id}` },
      ] as const;
      for (const request of writes) {
        const body = expectError(await ctx.app.inject({ ...request, headers: viewer }), 'FORBIDDEN');
        expect(body.error.details).toEqual({ required_role: 'developer' });
      }
      // Nothing happened: still one snapshot, still there.
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}/snapshots`,
        headers: owner.headers,
      });
      expect(listed.json().data.map((s: { id: string }) => s.id)).toEqual([snap.id]);

      const developer = await memberKey(ctx, owner.workspaceId, 'developer');
      expect((await snapshot(ctx, developer, sandbox.id)).statusCode).toBe(201);
    });

    it("another workspace's snapshots and sandboxes are 404, whatever the route", async () => {
      const owner = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, owner.headers);
      const snap = (await snapshot(ctx, owner.headers, sandbox.id)).json();
      const stranger = await ctx.createCaller();
      const theirs = await createSandbox(ctx, stranger.headers);
      const cases = [
        { method: 'GET', url: `/v1/snapshots/${snap.id}`, code: 'SNAPSHOT_NOT_FOUND' },
        { method: 'GET', url: `/v1/snapshots/${snap.id}/download`, code: 'SNAPSHOT_NOT_FOUND' },
        { method: 'DELETE', url: `/v1/snapshots/${snap.id}`, code: 'SNAPSHOT_NOT_FOUND' },
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: {}, code: 'SNAPSHOT_NOT_FOUND' },
        {
          method: 'POST',
          url: `/v1/snapshots/${snap.id}/restore`,
          payload: { sandbox_id: theirs.id },
          code: 'SNAPSHOT_NOT_FOUND',
        },
        { method: 'GET', url: `/v1/sandboxes/${sandbox.id}/snapshots`, code: 'SANDBOX_NOT_FOUND' },
        {
          method: 'POST',
          url: `/v1/sandboxes/${sandbox.id}/snapshots`,
          payload: {},
          code: 'SANDBOX_NOT_FOUND',
        },
      ] as const;
      for (const { code, ...request } of cases) {
        const res = await ctx.app.inject({ ...request, headers: stranger.headers });
        expect(res.body).not.toContain(sandbox.id);
        expectError(res, code);
      }
      // The owner cannot restore into the stranger's sandbox either.
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: `/v1/snapshots/${snap.id}/restore`,
          headers: owner.headers,
          payload: { sandbox_id: theirs.id },
        }),
        'SANDBOX_NOT_FOUND',
      );
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/snapshots/${snap.id}`,
        headers: owner.headers,
      });
      expect(got.statusCode).toBe(200);
    });

    it('keys need a snapshot scope (and the sandbox scope a restore uses)', async () => {
      const owner = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, owner.headers);
      const snap = (await snapshot(ctx, owner.headers, sandbox.id)).json();
      const sandboxOnly = await ctx.createCaller({
        scopes: ['sandbox:create', 'sandbox:read', 'sandbox:write', 'sandbox:exec', 'sandbox:delete'],
      });
      const ownSandbox = await createSandbox(ctx, sandboxOnly.headers);
      const expectScope = async (request: Record<string, unknown>, headers: object, scope: string) => {
        const body = expectError(await ctx.app.inject({ ...request, headers } as never), 'FORBIDDEN');
        expect(body.error.details).toEqual({ required_scope: scope });
      };
      await expectScope(
        { method: 'POST', url: `/v1/sandboxes/${ownSandbox.id}/snapshots`, payload: {} },
        sandboxOnly.headers,
        'snapshot:create',
      );
      await expectScope(
        { method: 'GET', url: `/v1/sandboxes/${ownSandbox.id}/snapshots` },
        sandboxOnly.headers,
        'snapshot:read',
      );
      await expectScope(
        { method: 'GET', url: `/v1/snapshots/${snap.id}` },
        sandboxOnly.headers,
        'snapshot:read',
      );
      await expectScope(
        { method: 'DELETE', url: `/v1/snapshots/${snap.id}` },
        sandboxOnly.headers,
        'snapshot:delete',
      );
      await expectScope(
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: {} },
        sandboxOnly.headers,
        'snapshot:restore',
      );

      // A key with snapshot:* only restores into an existing sandbox with sandbox:write, into a
      // new one with sandbox:create — it holds neither.
      const headers = await keyHeaders(ctx, owner.userId, owner.workspaceId, ['snapshot:*']);
      await expectScope(
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: {} },
        headers,
        'sandbox:create',
      );
      await expectScope(
        { method: 'POST', url: `/v1/snapshots/${snap.id}/restore`, payload: { sandbox_id: sandbox.id } },
        headers,
        'sandbox:write',
      );
      // …and can create, read and download snapshots.
      expect((await snapshot(ctx, headers, sandbox.id)).statusCode).toBe(201);
      const link = await ctx.app.inject({ method: 'GET', url: `/v1/snapshots/${snap.id}/download`, headers });
      expect(link.statusCode).toBe(200);
    });

    it('bad input is 4xx: unknown sandbox or snapshot, bad body, memory on an isolation without it', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      expectError(await snapshot(ctx, caller.headers, 'sbx_nosuchsandbox'), 'SANDBOX_NOT_FOUND');
      for (const payload of [
        { name: '' },
        { name: 'x'.repeat(101) },
        { include_memory: 'yes' },
        { extra: 1 },
      ]) {
        expectError(await snapshot(ctx, caller.headers, sandbox.id, payload), 'VALIDATION_ERROR');
      }
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/snapshots/snap_nosuch', headers: caller.headers }),
        'SNAPSHOT_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/snapshots/snap_nosuch/restore',
          headers: caller.headers,
          payload: { sandbox_id: 42 },
        }),
        'VALIDATION_ERROR',
      );

      // The local isolation keeps no memory: include_memory is refused before anything is stored.
      expect(ctx.engine.runtime.features.memorySnapshots).toBe(false);
      const memory = expectError(
        await snapshot(ctx, caller.headers, sandbox.id, { include_memory: true }),
        'VALIDATION_ERROR',
      );
      expect(memory.error.details.fields).toEqual([
        { path: '/include_memory', message: 'is not supported by the local isolation' },
      ]);
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}/snapshots`,
        headers: caller.headers,
      });
      expect(listed.json().data).toEqual([]);

      // A snapshot that is not ready cannot be downloaded or restored.
      const snap = (await snapshot(ctx, caller.headers, sandbox.id)).json();
      await ctx.store.db
        .updateTable('snapshots')
        .set({ status: 'creating' })
        .where('id', '=', snap.id)
        .execute();
      for (const [method, url] of [
        ['GET', `/v1/snapshots/${snap.id}/download`],
        ['POST', `/v1/snapshots/${snap.id}/restore`],
      ] as const) {
        expectError(
          await ctx.app.inject({
            method,
            url,
            headers: caller.headers,
            payload: method === 'POST' ? {} : undefined,
          }),
          'INVALID_STATE',
        );
      }
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `/v1/snapshots/${snap.id}`, headers: caller.headers }),
        'INVALID_STATE',
      );
      // What a restarted server does with snapshots its predecessor left half-made.
      await snapshotsOf(ctx.app).settleInterrupted();
      const settled = await ctx.app.inject({
        method: 'GET',
        url: `/v1/snapshots/${snap.id}`,
        headers: caller.headers,
      });
      expect(settled.json()).toMatchObject({ status: 'error', error: 'interrupted by a server restart' });
      const removed = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/snapshots/${snap.id}`,
        headers: caller.headers,
      });
      expect(removed.statusCode).toBe(204);
    });

    it("the free plan's max_snapshots is 403 PLAN_LIMIT; deleting one makes room", async () => {
      const caller = await ctx.createCaller({ plan: 'free' });
      const sandbox = await createSandbox(ctx, caller.headers);
      // Failed snapshots do not count.
      await ctx.store.db
        .insertInto('snapshots')
        .values({
          id: newId('snap'),
          workspace_id: caller.workspaceId,
          sandbox_id: sandbox.id,
          name: 'failed',
          status: 'error',
          blob_key: null,
          size_bytes: null,
          sha256: null,
          includes_memory: 0,
          template: 'base',
          error: 'failed for the test',
          created_by: caller.userId,
          created_at: isoNow(),
          deleted_at: null,
        })
        .execute();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await snapshot(ctx, caller.headers, sandbox.id, { name: `s${i}` });
        expect(res.statusCode, res.body).toBe(201);
        ids.push(res.json().id);
      }
      // Four at once over two sandboxes, two places left: exactly two are taken.
      const second = await createSandbox(ctx, caller.headers);
      const racing = await Promise.all(
        [sandbox.id, second.id, sandbox.id, second.id].map((id) => snapshot(ctx, caller.headers, id)),
      );
      expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 201, 403, 403]);
      for (const res of racing) {
        if (res.statusCode === 201) ids.push(res.json().id);
        else expectError(res, 'PLAN_LIMIT');
      }
      const capped = expectError(await snapshot(ctx, caller.headers, sandbox.id), 'PLAN_LIMIT');
      expect(capped.error.details).toMatchObject({ limit: 'max_snapshots', max: 5, plan: 'free' });
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/snapshots/${ids[0]}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      expect((await snapshot(ctx, caller.headers, sandbox.id)).statusCode).toBe(201);
    });
  },
  { runtime: true },
);
