import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { createBlobStore } from '../../src/blobs/index.js';
import { snapshotBlobKey } from '../../src/services/snapshot-view.js';
import { describeStores, expectError } from '../support/app.js';
import { auditOf, createSandbox, HOME, readText, snapshot, writeText } from './helpers.js';

describeStores(
  'snapshots: restore and delete',
  (ctx) => {
    it('restores into the same sandbox: changed and deleted files come back, new ones go', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'version one');
      await writeText(ctx, sandbox.id, `${HOME}/keep/b.txt`, 'bee');
      const snap = (await snapshot(ctx, caller.headers, sandbox.id)).json();
      expect(snap.status).toBe('ready');

      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'version two');
      await ctx.engine.runtime.files.remove(sandbox.id, `${HOME}/keep`, { recursive: true });
      await writeText(ctx, sandbox.id, `${HOME}/later.txt`, 'after the snapshot');
      expect(await readText(ctx, sandbox.id, `${HOME}/keep/b.txt`)).toBeNull();

      const restored = await ctx.app.inject({
        method: 'POST',
        url: `/v1/snapshots/${snap.id}/restore`,
        headers: caller.headers,
        payload: { sandbox_id: sandbox.id },
      });
      expect(restored.statusCode, restored.body).toBe(200);
      expect(restored.json()).toMatchObject({ id: sandbox.id, status: 'running' });
      expect(await readText(ctx, sandbox.id, `${HOME}/a.txt`)).toBe('version one');
      expect(await readText(ctx, sandbox.id, `${HOME}/keep/b.txt`)).toBe('bee');
      expect(await readText(ctx, sandbox.id, `${HOME}/later.txt`)).toBeNull();
      expect(await ctx.engine.runtime.get(sandbox.id)).toMatchObject({ state: 'running' });
      const restoreEvent = (await auditOf(ctx, sandbox.id)).find((e) => e.action === 'sandbox.restore');
      expect(JSON.parse(restoreEvent!.details)).toMatchObject({ snapshot_id: snap.id });
    });

    it('restores into a sandbox whose status is error and leaves it running', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'saved');
      const snap = (await snapshot(ctx, caller.headers, sandbox.id)).json();
      await ctx.app.sandboxes.setStatus(sandbox.id, 'error', { error: 'broken for the test' });
      // A sandbox in error cannot be snapshotted (409 naming the state) but can be restored.
      const refused = expectError(await snapshot(ctx, caller.headers, sandbox.id), 'INVALID_STATE');
      expect(refused.error.details).toMatchObject({ status: 'error', action: 'snapshot' });
      const restored = await ctx.app.inject({
        method: 'POST',
        url: `/v1/snapshots/${snap.id}/restore`,
        headers: caller.headers,
        payload: { sandbox_id: sandbox.id },
      });
      expect(restored.statusCode, restored.body).toBe(200);
      expect(restored.json()).toMatchObject({ status: 'running', error: null });
      expect(await readText(ctx, sandbox.id, `${HOME}/a.txt`)).toBe('saved');
    });

    it('snapshots a stopped sandbox and restores into it, leaving it running', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'written while running');
      await ctx.engine.runtime.stop(sandbox.id);
      await ctx.app.sandboxes.setStatus(sandbox.id, 'stopped');
      const created = await snapshot(ctx, caller.headers, sandbox.id);
      expect(created.statusCode, created.body).toBe(201);
      const restored = await ctx.app.inject({
        method: 'POST',
        url: `/v1/snapshots/${created.json().id}/restore`,
        headers: caller.headers,
        payload: { sandbox_id: sandbox.id },
      });
      expect(restored.statusCode, restored.body).toBe(200);
      expect(restored.json().status).toBe('running');
      expect(await ctx.engine.runtime.get(sandbox.id)).toMatchObject({ state: 'running' });
      expect(await readText(ctx, sandbox.id, `${HOME}/a.txt`)).toBe('written while running');
    });

    it("lists a sandbox's snapshots newest first, a page at a time", async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        // No body at all is the same as `{}`.
        const res = await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${sandbox.id}/snapshots`,
          headers: caller.headers,
        });
        expect(res.statusCode, res.body).toBe(201);
        ids.push(res.json().id);
      }
      const url = `/v1/sandboxes/${sandbox.id}/snapshots?limit=2`;
      const first = (await ctx.app.inject({ method: 'GET', url, headers: caller.headers })).json();
      expect(first.data.map((s: { id: string }) => s.id)).toEqual([ids[2], ids[1]]);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = (
        await ctx.app.inject({
          method: 'GET',
          url: `${url}&cursor=${first.next_cursor}`,
          headers: caller.headers,
        })
      ).json();
      expect(second).toEqual({ data: [expect.objectContaining({ id: ids[0] })], next_cursor: null });
    });

    it('restores into a new sandbox, also after the source sandbox was deleted', async () => {
      const caller = await ctx.createCaller();
      const source = await createSandbox(ctx, caller.headers);
      await writeText(ctx, source.id, `${HOME}/project/main.py`, 'print("hi")\n');
      const snap = (await snapshot(ctx, caller.headers, source.id, { name: 'before delete' })).json();

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${source.id}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      // The snapshot outlives its sandbox: still there, still listed under it.
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/snapshots/${snap.id}`,
        headers: caller.headers,
      });
      expect(got.json()).toEqual(snap);
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${source.id}/snapshots`,
        headers: caller.headers,
      });
      expect(listed.json().data.map((s: { id: string }) => s.id)).toEqual([snap.id]);

      const restored = await ctx.app.inject({
        method: 'POST',
        url: `/v1/snapshots/${snap.id}/restore`,
        headers: caller.headers,
      });
      expect(restored.statusCode, restored.body).toBe(201);
      const fresh = restored.json();
      expect(fresh.id).not.toBe(source.id);
      expect(fresh).toMatchObject({ status: 'running', template: 'base', workspace_id: caller.workspaceId });
      expect(await readText(ctx, fresh.id, `${HOME}/project/main.py`)).toBe('print("hi")\n');
      const actions = (await auditOf(ctx, fresh.id)).map((e) => e.action);
      expect(actions).toEqual(['sandbox.create', 'sandbox.restore']);
    });

    it('a damaged archive is 400 and changes nothing: the target keeps its files, no new sandbox stays', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'current');
      const snap = (await snapshot(ctx, caller.headers, sandbox.id)).json();
      await createBlobStore(ctx.config).put(
        snapshotBlobKey(snap.id),
        Readable.from([Buffer.from('not an archive at all')]),
      );
      const restore = (payload: Record<string, unknown>) =>
        ctx.app.inject({
          method: 'POST',
          url: `/v1/snapshots/${snap.id}/restore`,
          headers: caller.headers,
          payload,
        });
      const same = expectError(await restore({ sandbox_id: sandbox.id }), 'BAD_REQUEST');
      expect(same.error.details).toMatchObject({ runtime_code: 'SNAPSHOT_INVALID' });
      expect(await readText(ctx, sandbox.id, `${HOME}/a.txt`)).toBe('current');
      const after = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(after.json().status).toBe('running');

      const runtimeBefore = (await ctx.engine.runtime.list()).length;
      expectError(await restore({}), 'BAD_REQUEST');
      const live = await ctx.app.inject({ method: 'GET', url: '/v1/sandboxes', headers: caller.headers });
      expect(live.json().data.map((s: { id: string }) => s.id)).toEqual([sandbox.id]);
      expect((await ctx.engine.runtime.list()).length).toBe(runtimeBefore);
    });

    it('deletes: 204, then 404 everywhere, the archive gone and an earlier download URL dead', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      const snap = (await snapshot(ctx, caller.headers, sandbox.id)).json();
      const key = snapshotBlobKey(snap.id);
      const blobs = createBlobStore(ctx.config);
      expect(await blobs.stat(key)).toEqual({ size: snap.size_bytes });
      const link = (
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/snapshots/${snap.id}/download`,
          headers: caller.headers,
        })
      ).json();

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/snapshots/${snap.id}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      expect(await blobs.stat(key)).toBeNull();
      const row = await ctx.store.db
        .selectFrom('snapshots')
        .select('deleted_at')
        .where('id', '=', snap.id)
        .executeTakeFirstOrThrow();
      expect(row.deleted_at).not.toBeNull();

      const path = new URL(link.url);
      for (const [method, url, payload] of [
        ['GET', `/v1/snapshots/${snap.id}`, undefined],
        ['DELETE', `/v1/snapshots/${snap.id}`, undefined],
        ['GET', `/v1/snapshots/${snap.id}/download`, undefined],
        ['POST', `/v1/snapshots/${snap.id}/restore`, { sandbox_id: sandbox.id }],
      ] as const) {
        expectError(
          await ctx.app.inject({ method, url, headers: caller.headers, payload }),
          'SNAPSHOT_NOT_FOUND',
        );
      }
      // A still-valid signature for a deleted snapshot: 404 (the signature is good, the object gone).
      expectError(
        await ctx.app.inject({ method: 'GET', url: `${path.pathname}${path.search}` }),
        'SNAPSHOT_NOT_FOUND',
      );
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}/snapshots`,
        headers: caller.headers,
      });
      expect(listed.json().data).toEqual([]);
      expect((await auditOf(ctx, sandbox.id)).map((e) => e.action)).toContain('snapshot.delete');
    });
  },
  { runtime: true },
);
