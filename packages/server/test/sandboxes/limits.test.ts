import { expect, it } from 'vitest';
import { PLANS } from '../../src/plans.js';
import { describeStores, expectError } from '../support/app.js';

describeStores(
  'sandboxes: plan caps',
  (ctx) => {
    type Headers = { authorization: string };
    const create = (headers: Headers, payload: Record<string, unknown> = {}) =>
      ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload });
    const act = (headers: Headers, id: string, action: string, payload?: Record<string, unknown>) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${action}`,
        headers,
        ...(payload ? { payload } : {}),
      });
    const patch = (headers: Headers, id: string, payload: Record<string, unknown>) =>
      ctx.app.inject({ method: 'PATCH', url: `/v1/sandboxes/${id}`, headers, payload });
    const limitOf = (res: Parameters<typeof expectError>[0]) =>
      expectError(res, 'PLAN_LIMIT').error.details as { limit: string; max: number; plan: string };

    it('free: a third concurrent sandbox is refused, and so is starting one beyond the cap', async () => {
      const free = await ctx.createCaller({ plan: 'free' });
      const max = PLANS.free.maxConcurrentSandboxes;
      expect(max).toBe(2);
      const first = (await create(free.headers)).json();
      const second = (await create(free.headers)).json();
      expect([first.status, second.status]).toEqual(['running', 'running']);
      expect(limitOf(await create(free.headers))).toMatchObject({
        limit: 'max_concurrent_sandboxes',
        max,
        plan: 'free',
      });

      // A paused sandbox still counts; a stopped or hibernated one does not.
      expect((await act(free.headers, first.id, 'pause')).statusCode).toBe(200);
      expectError(await create(free.headers), 'PLAN_LIMIT');
      expect((await act(free.headers, first.id, 'stop')).statusCode).toBe(200);
      expect((await act(free.headers, second.id, 'hibernate')).statusCode).toBe(200);
      const third = (await create(free.headers)).json();
      const fourth = (await create(free.headers)).json();
      expect([third.status, fourth.status]).toEqual(['running', 'running']);

      // Waking either would make three.
      expect(limitOf(await act(free.headers, first.id, 'start')).limit).toBe('max_concurrent_sandboxes');
      expect(limitOf(await act(free.headers, second.id, 'resume')).limit).toBe('max_concurrent_sandboxes');
      const stillStopped = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${first.id}`,
        headers: free.headers,
      });
      expect(stillStopped.json().status).toBe('stopped');
      expect((await ctx.engine.runtime.get(first.id))?.state).toBe('stopped');

      // With room again, it starts.
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${third.id}`,
        headers: free.headers,
      });
      expect(deleted.statusCode).toBe(204);
      expect((await act(free.headers, first.id, 'start')).json().status).toBe('running');
    });

    it('free: two starts at once with room for one: exactly one is refused', async () => {
      const free = await ctx.createCaller({ plan: 'free' });
      const a = (await create(free.headers)).json();
      const b = (await create(free.headers)).json();
      expect((await act(free.headers, a.id, 'stop')).statusCode).toBe(200);
      expect((await act(free.headers, b.id, 'stop')).statusCode).toBe(200);
      const running = (await create(free.headers)).json();
      expect(running.status).toBe('running');
      const results = await Promise.all([act(free.headers, a.id, 'start'), act(free.headers, b.id, 'start')]);
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 403]);
      expectError(results.find((r) => r.statusCode === 403)!, 'PLAN_LIMIT');
    });

    it('free: resources and timeouts above the plan are refused on create and on PATCH', async () => {
      const free = await ctx.createCaller({ plan: 'free' });
      expect(limitOf(await create(free.headers, { resources: { cpu: 2 } }))).toMatchObject({
        limit: 'max_cpu',
        max: PLANS.free.maxCpu,
      });
      expect(limitOf(await create(free.headers, { resources: { memory_mb: 4096 } })).limit).toBe(
        'max_memory_mb',
      );
      expect(limitOf(await create(free.headers, { timeout_seconds: 7200 }))).toMatchObject({
        limit: 'max_timeout_seconds',
        max: 3600,
      });

      const sandbox = (await create(free.headers)).json();
      expect(limitOf(await patch(free.headers, sandbox.id, { resources: { cpu: 2 } })).limit).toBe('max_cpu');
      expect(limitOf(await patch(free.headers, sandbox.id, { resources: { disk_mb: 100_000 } })).limit).toBe(
        'max_disk_mb',
      );
      expect(limitOf(await patch(free.headers, sandbox.id, { timeout_seconds: 7200 })).limit).toBe(
        'max_timeout_seconds',
      );
      // Refused updates change nothing.
      const unchanged = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: free.headers,
      });
      expect(unchanged.json()).toMatchObject({ resources: sandbox.resources, timeout_seconds: 3600 });

      // Within the caps it is stored (merged over the current resources).
      const ok = await patch(free.headers, sandbox.id, { resources: { memory_mb: 1024 } });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().resources).toEqual({ ...sandbox.resources, memory_mb: 1024 });
    });

    it("free: keepalive never extends beyond the plan's longest timeout from now", async () => {
      const free = await ctx.createCaller({ plan: 'free' });
      const sandbox = (await create(free.headers)).json();
      const before = Date.now();
      expect((await act(free.headers, sandbox.id, 'keepalive', { seconds: 86_400 })).statusCode).toBe(204);
      const after = Date.now();
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: free.headers,
      });
      const expires = Date.parse(got.json().expires_at);
      expect(expires).toBeGreaterThanOrEqual(before + 3_600_000 - 1);
      expect(expires).toBeLessThanOrEqual(after + 3_600_000 + 1);
    });
  },
  { runtime: true },
);
