import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeStores, expectError } from '../support/app.js';

// Holds a 200 MiB string: fits in 512 MB, not in 128 MB; prints the exit status either way.
const ALLOC_200M = 'perl -e "\\$x = \\"a\\" x (200 * 1024 ** 2); print length \\$x"; echo " status=$?"';
const FITS = `${200 * 1024 ** 2} status=0\n`;
const KILLED = ' status=137\n';

describeStores(
  'sandboxes: PATCH resources reach the runtime',
  (ctx) => {
    type Headers = { authorization: string };
    const patch = (headers: Headers, id: string, payload: Record<string, unknown>) =>
      ctx.app.inject({ method: 'PATCH', url: `/v1/sandboxes/${id}`, headers, payload });
    const act = (headers: Headers, id: string, action: string) =>
      ctx.app.inject({ method: 'POST', url: `/v1/sandboxes/${id}/${action}`, headers });
    const allocate = async (headers: Headers, id: string) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/exec`,
        headers,
        payload: { command: 'sh', args: ['-c', ALLOC_200M] },
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().stdout as string;
    };
    const create = async (headers: Headers) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers,
        payload: { resources: { cpu: 1, memory_mb: 512, disk_mb: 512 } },
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; resources: Record<string, number> };
    };

    it('a new memory limit is enforced at once on a running sandbox, and raised again', async () => {
      const caller = await ctx.createCaller({ plan: 'free' });
      const sandbox = await create(caller.headers);
      expect(await allocate(caller.headers, sandbox.id)).toBe(FITS);

      const res = await patch(caller.headers, sandbox.id, { resources: { memory_mb: 128, cpu: 0.5 } });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().resources).toEqual({ cpu: 0.5, memory_mb: 128, disk_mb: 512 });
      const info = await ctx.engine.runtime.get(sandbox.id);
      expect(info).toMatchObject({ state: 'running', resources: { cpu: 0.5, memoryMb: 128, diskMb: 512 } });
      expect(await allocate(caller.headers, sandbox.id)).toBe(KILLED);

      expect((await patch(caller.headers, sandbox.id, { resources: { memory_mb: 512 } })).statusCode).toBe(
        200,
      );
      expect((await ctx.engine.runtime.get(sandbox.id))?.resources.memoryMb).toBe(512);
      expect(await allocate(caller.headers, sandbox.id)).toBe(FITS);
    });

    it('a stopped sandbox keeps the new limit for its next start', async () => {
      const caller = await ctx.createCaller({ plan: 'free' });
      const sandbox = await create(caller.headers);
      expect((await act(caller.headers, sandbox.id, 'stop')).statusCode).toBe(200);
      const res = await patch(caller.headers, sandbox.id, { resources: { memory_mb: 128 } });
      expect(res.statusCode, res.body).toBe(200);
      expect(await ctx.engine.runtime.get(sandbox.id)).toMatchObject({
        state: 'stopped',
        resources: { memoryMb: 128 },
      });
      expect((await act(caller.headers, sandbox.id, 'start')).json().status).toBe('running');
      expect(await allocate(caller.headers, sandbox.id)).toBe(KILLED);
    });

    it('memory below what the sandbox holds is refused by the runtime (cgroup v1): the row is not stored', async () => {
      const caller = await ctx.createCaller({ plan: 'free' });
      const sandbox = await create(caller.headers);
      const hold = `nohup perl -e '$x = "a" x (100 * 1024 ** 2); open F, ">/tmp/held"; close F; sleep 600' >/dev/null 2>&1 & while [ ! -e /tmp/held ]; do sleep 0.05; done`;
      const held = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox.id}/exec`,
        headers: caller.headers,
        payload: { command: 'sh', args: ['-c', hold], timeout_seconds: 30 },
      });
      expect(held.json().exit_code, held.body).toBe(0);
      const res = await patch(caller.headers, sandbox.id, { resources: { memory_mb: 64 } });
      if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
        // cgroup v2 OOM-kills inside instead and keeps the limit.
        expect(res.statusCode, res.body).toBe(200);
        return;
      }
      expect(expectError(res, 'VALIDATION_ERROR').error.message).toMatch(/uses more than 64 MiB/);
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(got.json()).toMatchObject({ status: 'running', resources: sandbox.resources });
      expect((await ctx.engine.runtime.get(sandbox.id))?.resources.memoryMb).toBe(512);
    });

    it('refuses a disk size change (400) and caps above the plan (403), changing nothing', async () => {
      const caller = await ctx.createCaller({ plan: 'free' });
      const sandbox = await create(caller.headers);
      const runtimeBefore = (await ctx.engine.runtime.get(sandbox.id))?.resources;

      const disk = expectError(
        await patch(caller.headers, sandbox.id, { resources: { disk_mb: 1024, memory_mb: 256 } }),
        'VALIDATION_ERROR',
      );
      expect(disk.error.message).toMatch(/disk size is fixed at create/);
      expect(disk.error.details).toMatchObject({ fields: [{ path: '/resources/disk_mb' }] });
      expect(
        expectError(await patch(caller.headers, sandbox.id, { resources: { memory_mb: 4096 } }), 'PLAN_LIMIT')
          .error.details,
      ).toMatchObject({ limit: 'max_memory_mb' });

      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(got.json().resources).toEqual(sandbox.resources);
      expect((await ctx.engine.runtime.get(sandbox.id))?.resources).toEqual(runtimeBefore);

      // The same disk size is no change: accepted with the rest.
      const same = await patch(caller.headers, sandbox.id, { resources: { disk_mb: 512, memory_mb: 256 } });
      expect(same.statusCode, same.body).toBe(200);
      expect((await ctx.engine.runtime.get(sandbox.id))?.resources).toMatchObject({
        memoryMb: 256,
        diskMb: 512,
      });
    });
  },
  { runtime: true },
);
