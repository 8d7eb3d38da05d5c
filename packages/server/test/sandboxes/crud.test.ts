import { expect, it } from 'vitest';
import { describeStores, expectError } from '../support/app.js';

describeStores(
  'sandboxes: create, get, list, delete',
  (ctx) => {
    it('creates a running sandbox, reads it, lists it, destroys it', async () => {
      const caller = await ctx.createCaller();
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: caller.headers,
        payload: {
          name: 'first',
          metadata: { team: 'a' },
          ports: [3000],
          env: { SECRET_TOKEN: 's3cr3t-v4lue' },
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      const sandbox = created.json();
      expect(sandbox.id).toMatch(/^sbx_[0-9a-z]{22}$/);
      expect(sandbox.status).toBe('running');
      expect(sandbox.workspace_id).toBe(caller.workspaceId);
      expect(sandbox.template).toBe('base');
      expect(sandbox.preview_urls['3000']).toBe(
        `http://3000-${sandbox.id}.localhost:${new URL(ctx.config.publicUrl).port}`,
      );
      expect(created.body).not.toContain('s3cr3t-v4lue');
      expect(await ctx.engine.runtime.get(sandbox.id)).toMatchObject({ state: 'running' });

      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(got.statusCode).toBe(200);
      expect(got.json().id).toBe(sandbox.id);

      const listed = await ctx.app.inject({
        method: 'GET',
        url: '/v1/sandboxes?metadata[team]=a',
        headers: caller.headers,
      });
      expect(listed.json().data.map((s: { id: string }) => s.id)).toEqual([sandbox.id]);
      const none = await ctx.app.inject({
        method: 'GET',
        url: '/v1/sandboxes?metadata[team]=b',
        headers: caller.headers,
      });
      expect(none.json().data).toEqual([]);

      const other = await ctx.createCaller();
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${sandbox.id}`, headers: other.headers }),
        'SANDBOX_NOT_FOUND',
      );

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      expect(await ctx.engine.runtime.get(sandbox.id)).toBeNull();
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${sandbox.id}`, headers: caller.headers }),
        'SANDBOX_NOT_FOUND',
      );
    });

    it('refuses metadata keys and env names outside their patterns (400, nothing created)', async () => {
      const caller = await ctx.createCaller();
      for (const payload of [
        { metadata: { 'bad key!': 'x' } },
        { env: { '1 X': 'x' } },
        { env: { 'A-B': 'x' } },
      ]) {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/sandboxes',
          headers: caller.headers,
          payload,
        });
        expectError(res, 'VALIDATION_ERROR');
      }
      const listed = await ctx.app.inject({ method: 'GET', url: '/v1/sandboxes', headers: caller.headers });
      expect(listed.json().data).toEqual([]);
    });

    it('takes a POST without a body as {} (defaults), and the OpenAPI document says the body is optional', async () => {
      const caller = await ctx.createCaller();
      const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers: caller.headers });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({
        template: 'base',
        status: 'running',
        resources: { cpu: 1, memory_mb: 512 },
      });
      const doc = (await ctx.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
      expect(doc.paths['/v1/sandboxes'].post.requestBody.required).toBe(false);
      expect(doc.paths['/v1/sandboxes/{id}/keepalive'].post.requestBody.required).toBe(false);
      expect(doc.paths['/v1/account/keys'].post.requestBody.required).toBe(true);
    });
  },
  { runtime: true },
);
