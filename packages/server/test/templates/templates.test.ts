import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { newId } from '../../src/ids.js';
import { isoNow } from '../../src/store/index.js';
import { describeStores, expectError } from '../support/app.js';
import { makeTestImage, memberHeaders, waitForTemplate } from './support.js';

const BUILTINS = ['base', 'python', 'nodejs', 'go', 'gui'];
const TAR = { 'content-type': 'application/x-tar' };

describeStores(
  'templates: list, import, get, delete',
  (ctx) => {
    const get = (headers: { authorization: string }) => (url: string) =>
      ctx.app.inject({ method: 'GET', url, headers });
    const importImage = async (headers: { authorization: string }, name: string, tar: Buffer) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/templates?name=${name}`,
        headers: { ...headers, ...TAR },
        payload: tar,
      });

    it('lists the built-ins first, ready when built on this server', async () => {
      const caller = await ctx.createCaller();
      const res = await get(caller.headers)('/v1/templates');
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json();
      expect(page.next_cursor).toBeNull();
      expect(page.data.map((t: { id: string }) => t.id)).toEqual(BUILTINS);
      const built = new Set((await ctx.engine.templates.list()).map((t) => t.name));
      for (const template of page.data) {
        expect(template).toMatchObject({
          name: template.id,
          builtin: true,
          source: 'builtin',
          workspace_id: null,
        });
        expect(template.status).toBe(built.has(template.id) ? 'ready' : 'available');
        expect(template.log).toBeUndefined();
      }
      // The first sandbox on `base` builds it, so it is ready after one.
      const sandbox = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: caller.headers,
        payload: {},
      });
      expect(sandbox.statusCode).toBe(201);
      const base = await get(caller.headers)('/v1/templates/base');
      expect(base.json()).toMatchObject({ id: 'base', status: 'ready', builtin: true, log: '' });
      expect(base.json().runtime_id).toMatch(/^tpl_[0-9a-f]{24}$/);
      expect(base.json().packages).toEqual([]);
      expect((await get(caller.headers)('/v1/templates/python')).json().packages).toContain('python3');
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: '/v1/templates/base', headers: caller.headers }),
        'FORBIDDEN',
      );
      expectError(await get(caller.headers)('/v1/templates/nope'), 'TEMPLATE_NOT_FOUND');
      expectError(await get(caller.headers)('/v1/templates/tpl_nope'), 'TEMPLATE_NOT_FOUND');
    });

    it('imports an image tarball in the background: building → ready, with its log; lists, gets, deletes it', async () => {
      const caller = await ctx.createCaller();
      const { tar } = await makeTestImage();
      const res = await importImage(caller.headers, 'my-image', tar);
      expect(res.statusCode, res.body).toBe(202);
      const created = res.json();
      expect(created).toMatchObject({
        name: 'my-image',
        builtin: false,
        status: 'building',
        source: 'image',
        workspace_id: caller.workspaceId,
        runtime_id: null,
        packages: null,
      });
      expect(created.id).toMatch(/^tpl_[0-9A-Za-z]{22}$/);

      const ready = await waitForTemplate(get(caller.headers), created.id);
      expect(ready.status, String(ready.log)).toBe('ready');
      expect(ready.runtime_id).toMatch(/^tpl_[0-9a-f]{24}$/);
      expect(ready.size_bytes).toBeGreaterThan(0);
      expect(ready.finished_at).toEqual(expect.any(String));
      expect(ready.error).toBeNull();
      const log = String(ready.log);
      expect(log).toContain(`importing my-image from an image tarball of ${tar.length} bytes`);
      expect(log).toContain(`ready: ${ready.runtime_id}`);
      // The upload's temp file is gone, and its server path never shows.
      expect(await readdir(join(ctx.config.dataDir, 'tmp'))).toEqual([]);
      expect(log).not.toContain(ctx.config.dataDir);
      const tree = (await ctx.engine.templates.list()).find((t) => t.id === ready.runtime_id);
      expect(tree?.name).toBe('my-image');

      const listed = (await get(caller.headers)('/v1/templates')).json();
      expect(listed.data.map((t: { id: string }) => t.id)).toEqual([...BUILTINS, created.id]);
      expect(listed.data[5].log).toBeUndefined();
      expect((await get(caller.headers)('/v1/templates/my-image')).json().id).toBe(created.id);

      // The same name again in this workspace is a conflict.
      expectError(await importImage(caller.headers, 'my-image', tar), 'CONFLICT');

      // A sandbox runs on the imported tree; while it lives the template cannot go.
      const sandbox = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: caller.headers,
        payload: { template: 'my-image' },
      });
      expect(sandbox.statusCode, sandbox.body).toBe(201);
      // (The image holds no programs, so the sandbox can only be started, not exec'd into.)
      expect(sandbox.json()).toMatchObject({ status: 'running', template: 'my-image' });
      expect(await ctx.engine.runtime.get(sandbox.json().id)).toMatchObject({ state: 'running' });
      const inUse = expectError(
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/templates/${created.id}`,
          headers: caller.headers,
        }),
        'CONFLICT',
      );
      expect(inUse.error.details.sandboxes).toEqual([sandbox.json().id]);
      await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${sandbox.json().id}`,
        headers: caller.headers,
      });

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/templates/${created.id}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode, deleted.body).toBe(204);
      expectError(await get(caller.headers)(`/v1/templates/${created.id}`), 'TEMPLATE_NOT_FOUND');
      expect((await ctx.engine.templates.list()).some((t) => t.id === ready.runtime_id)).toBe(false);
      const actions = await ctx.store.db
        .selectFrom('audit_events')
        .select('action')
        .where('target_id', '=', created.id)
        .execute();
      expect(actions.map((a) => a.action).sort()).toEqual(['template.delete', 'template.import']);
    });

    it('records a broken image as failed with the reason and the log', async () => {
      const caller = await ctx.createCaller();
      const res = await importImage(
        caller.headers,
        'broken',
        Buffer.from('this is not a tarball\n'.repeat(100)),
      );
      expect(res.statusCode, res.body).toBe(202);
      const failed = await waitForTemplate(get(caller.headers), res.json().id);
      expect(failed.status).toBe('failed');
      expect(failed.runtime_id).toBeNull();
      expect(String(failed.error).length).toBeGreaterThan(0);
      expect(String(failed.error)).not.toContain(ctx.config.dataDir);
      expect(String(failed.log)).toContain(`failed: ${failed.error}`);
      expect(await readdir(join(ctx.config.dataDir, 'tmp'))).toEqual([]);
      // A failed template cannot start sandboxes, and is deleted like any other.
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/sandboxes',
          headers: caller.headers,
          payload: { template: 'broken' },
        }),
        'INVALID_STATE',
      );
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: '/v1/templates/broken',
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
    });

    it('refuses uploads over the limit with 413, declared or streamed, and keeps nothing', async () => {
      const caller = await ctx.createCaller();
      const big = Buffer.alloc(ctx.config.fileUploadLimitBytes + 1, 1);
      expectError(await importImage(caller.headers, 'too-big', big), 'PAYLOAD_TOO_LARGE');
      const streamed = await ctx.app.inject({
        method: 'POST',
        url: '/v1/templates?name=too-big',
        headers: {
          ...caller.headers,
          'content-type': 'application/octet-stream',
          'transfer-encoding': 'chunked',
        },
        payload: big,
      });
      expectError(streamed, 'PAYLOAD_TOO_LARGE');
      expect(await readdir(join(ctx.config.dataDir, 'tmp'))).toEqual([]);
      expect((await get(caller.headers)('/v1/templates')).json().data).toHaveLength(BUILTINS.length);
    });

    it('rejects bad definitions and bad requests with 4xx', async () => {
      const caller = await ctx.createCaller();
      const post = (payload: object) =>
        ctx.app.inject({ method: 'POST', url: '/v1/templates', headers: caller.headers, payload });
      for (const payload of [
        { name: '../escape', packages: [] },
        { name: '', packages: [] },
        { name: 'a b', packages: [] },
        { name: 'x'.repeat(65), packages: [] },
        { name: 'base', packages: [] },
        { name: 'Python', packages: [] },
        { name: 'tpl_lookalike', packages: [] },
        { name: 'ok', packages: ['jq;rm -rf /'] },
        { name: 'ok', packages: ['$(id)'] },
        { name: 'ok', packages: ['jq curl'] },
        { name: 'ok', packages: ['-oAPT::Get=x'] },
        { name: 'ok', packages: ['Upper'] },
        { name: 'ok', packages: ['j'] },
        { name: 'ok', packages: ['jq', 'jq'] },
        { name: 'ok', packages: Array.from({ length: 201 }, (_, i) => `pkg${i}`) },
        { name: 'ok', packages: [], run: [''] },
        { name: 'ok', packages: [], run: ['   '] },
        { name: 'ok', packages: [], run: Array.from({ length: 51 }, () => 'true') },
        { name: 'ok', packages: [], suite: 'bookworm main' },
        { name: 'ok', packages: [], extra: true },
        { name: 'ok' },
        { packages: [] },
      ]) {
        const res = await post(payload);
        expectError(res, 'VALIDATION_ERROR');
      }
      // Run steps execute as root on the host while building: instance admins only.
      const runSteps = expectError(await post({ name: 'ok', packages: [], run: ['id'] }), 'FORBIDDEN');
      expect(runSteps.error.details).toEqual({ field: '/run', reason: 'instance_admin_required' });
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/templates',
          headers: { ...caller.headers, 'content-type': 'text/plain' },
          payload: 'name=x',
        }),
        'UNSUPPORTED_MEDIA_TYPE',
      );
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/templates',
          headers: { ...caller.headers, ...TAR },
          payload: 'x',
        }),
        'VALIDATION_ERROR',
      );
      expectError(await importImage(caller.headers, 'gui', Buffer.from('x')), 'VALIDATION_ERROR');
      expectError(await importImage(caller.headers, 'empty', Buffer.alloc(0)), 'BAD_REQUEST');
      // Nothing was stored.
      expect((await get(caller.headers)('/v1/templates')).json().data).toHaveLength(BUILTINS.length);
      expect(await readdir(join(ctx.config.dataDir, 'tmp')).catch(() => [])).toEqual([]);
    });

    it('checks scope, role and workspace on every route', async () => {
      const caller = await ctx.createCaller();
      const { tar } = await makeTestImage();
      const created = (await importImage(caller.headers, 'guarded', tar)).json();
      await waitForTemplate(get(caller.headers), created.id);

      const viewer = await memberHeaders(ctx, caller.workspaceId, 'viewer');
      expect((await get(viewer)('/v1/templates')).json().data).toHaveLength(BUILTINS.length + 1);
      expect((await get(viewer)(`/v1/templates/${created.id}`)).statusCode).toBe(200);
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/templates',
          headers: viewer,
          payload: { name: 'v', packages: [] },
        }),
        'FORBIDDEN',
      );
      expectError(await importImage(viewer, 'v', tar), 'FORBIDDEN');
      const denied = expectError(
        await ctx.app.inject({ method: 'DELETE', url: `/v1/templates/${created.id}`, headers: viewer }),
        'FORBIDDEN',
      );
      expect(denied.error.details).toEqual({ required_role: 'developer' });

      const stranger = await ctx.createCaller();
      expectError(await get(stranger.headers)(`/v1/templates/${created.id}`), 'TEMPLATE_NOT_FOUND');
      expectError(await get(stranger.headers)('/v1/templates/guarded'), 'TEMPLATE_NOT_FOUND');
      expectError(
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/templates/${created.id}`,
          headers: stranger.headers,
        }),
        'TEMPLATE_NOT_FOUND',
      );
      expect((await get(stranger.headers)('/v1/templates')).json().data).toHaveLength(BUILTINS.length);
      // Another workspace cannot start sandboxes from it, by id or by name.
      for (const template of [created.id, 'guarded']) {
        expectError(
          await ctx.app.inject({
            method: 'POST',
            url: '/v1/sandboxes',
            headers: stranger.headers,
            payload: { template },
          }),
          'TEMPLATE_NOT_FOUND',
        );
      }
      // The same name is free in another workspace.
      const theirs = await importImage(stranger.headers, 'guarded', tar);
      expect(theirs.statusCode).toBe(202);
      await waitForTemplate(get(stranger.headers), theirs.json().id);

      const readOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:read']);
      expect((await get(readOnly)('/v1/templates')).statusCode).toBe(200);
      const scoped = expectError(await importImage(readOnly, 'r', tar), 'FORBIDDEN');
      expect(scoped.error.details).toEqual({ required_scope: 'sandbox:create' });
      expectError(
        await ctx.app.inject({ method: 'DELETE', url: `/v1/templates/${created.id}`, headers: readOnly }),
        'FORBIDDEN',
      );
      const createOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:create']);
      expectError(await get(createOnly)('/v1/templates'), 'FORBIDDEN');
      expectError(await get(createOnly)(`/v1/templates/${created.id}`), 'FORBIDDEN');

      // Both imports of the same tarball share one tree: deleting one keeps it for the other.
      const mine = await waitForTemplate(get(caller.headers), created.id);
      const other = await waitForTemplate(get(stranger.headers), theirs.json().id);
      expect(other.runtime_id).toBe(mine.runtime_id);
      const del = (id: string, headers: { authorization: string }) =>
        ctx.app.inject({ method: 'DELETE', url: `/v1/templates/${id}`, headers });
      expect((await del(created.id, caller.headers)).statusCode).toBe(204);
      expect((await ctx.engine.templates.list()).some((t) => t.id === mine.runtime_id)).toBe(true);
      expect((await del(theirs.json().id, stranger.headers)).statusCode).toBe(204);
      expect((await ctx.engine.templates.list()).some((t) => t.id === other.runtime_id)).toBe(false);
    });

    it('marks builds a previous run left building as failed when the server starts', async () => {
      const caller = await ctx.createCaller();
      const id = newId('tpl');
      await ctx.store.db
        .insertInto('templates')
        .values({
          id,
          workspace_id: caller.workspaceId,
          name: 'orphaned',
          status: 'building',
          source: 'packages',
          definition: JSON.stringify({ packages: ['jq'] }),
          runtime_id: null,
          size_bytes: null,
          log: 'building orphaned\n',
          error: null,
          created_by: caller.userId,
          created_at: isoNow(),
          finished_at: null,
          deleted_at: null,
        })
        .execute();
      const restarted = await buildApp({
        config: ctx.config,
        store: ctx.store,
        logger: pino({ level: 'silent' }),
        defaultMetrics: false,
        runtime: ctx.engine.runtime,
        templates: ctx.engine.templates,
      });
      await restarted.ready();
      await restarted.close();
      const template = (await get(caller.headers)(`/v1/templates/${id}`)).json();
      expect(template).toMatchObject({ status: 'failed', error: 'interrupted by a restart' });
      expect(template.finished_at).toEqual(expect.any(String));
    });
  },
  { runtime: true, config: { fileUploadLimitBytes: 256 * 1024 } },
);
