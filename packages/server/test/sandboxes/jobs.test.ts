import { expect, it } from 'vitest';
import { runSandboxJobsOnce } from '../../src/plugins/sandbox-jobs.js';
import { runSandboxJobs } from '../../src/services/sandboxes/jobs.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';

type Headers = { authorization: string };

async function createSandbox(ctx: StoreContext, headers: Headers, payload: Record<string, unknown>) {
  const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; expires_at: string; last_activity_at: string };
}

async function getSandbox(ctx: StoreContext, headers: Headers, id: string) {
  return ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}`, headers });
}

async function eventsOf(ctx: StoreContext, headers: Headers, id: string) {
  const res = await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/events`, headers });
  return res.json().data as { action: string; actor_type: string; actor_id: string | null }[];
}

/** Resolves once the wall clock has passed `iso`. */
async function until(iso: string): Promise<void> {
  const wait = Date.parse(iso) - Date.now() + 50;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

describeStores(
  'sandboxes: expiry and idle jobs',
  (ctx) => {
    it('destroys a sandbox once expires_at has passed, recorded by system', async () => {
      const caller = await ctx.createCaller();
      const keep = await createSandbox(ctx, caller.headers, {});
      const sandbox = await createSandbox(ctx, caller.headers, { timeout_seconds: 1 });
      await until(sandbox.expires_at);
      const report = await runSandboxJobsOnce(ctx.app);
      expect(report.expired).toBeGreaterThanOrEqual(1);
      expectError(await getSandbox(ctx, caller.headers, sandbox.id), 'SANDBOX_NOT_FOUND');
      expect(await ctx.engine.runtime.get(sandbox.id)).toBeNull();
      const events = await eventsOf(ctx, caller.headers, sandbox.id);
      expect(events[0]).toMatchObject({ action: 'sandbox.expire', actor_type: 'system', actor_id: null });
      // The one with time left is untouched.
      expect((await getSandbox(ctx, caller.headers, keep.id)).json().status).toBe('running');
    });

    it('keepalive and a longer timeout (PATCH) push expiry back', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers, { timeout_seconds: 30 });
      const expiresAt = Date.parse(sandbox.expires_at);
      // At the old expiry it would go; keepalive moves it.
      const alive = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox.id}/keepalive`,
        headers: caller.headers,
        payload: { seconds: 600 },
      });
      expect(alive.statusCode).toBe(204);
      expect((await runSandboxJobs(ctx.app.sandboxes, expiresAt + 1000)).expired).toBe(0);
      const patched = await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
        payload: { timeout_seconds: 1200 },
      });
      expect(patched.statusCode, patched.body).toBe(200);
      expect((await runSandboxJobs(ctx.app.sandboxes, Date.now() + 900_000)).expired).toBe(0);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('running');
      expect(
        (await runSandboxJobs(ctx.app.sandboxes, Date.now() + 1_201_000)).expired,
      ).toBeGreaterThanOrEqual(1);
      expectError(await getSandbox(ctx, caller.headers, sandbox.id), 'SANDBOX_NOT_FOUND');
    });

    it('pauses a running sandbox idle for its idle timeout, recorded by system', async () => {
      const caller = await ctx.createCaller();
      const busy = await createSandbox(ctx, caller.headers, {});
      const sandbox = await createSandbox(ctx, caller.headers, { idle_timeout_seconds: 1 });
      await until(new Date(Date.parse(sandbox.last_activity_at) + 1000).toISOString());
      const report = await runSandboxJobsOnce(ctx.app);
      expect(report.idlePaused).toBe(1);
      expect((await ctx.engine.runtime.get(sandbox.id))?.state).toBe('paused');
      const got = (await getSandbox(ctx, caller.headers, sandbox.id)).json();
      expect(got.status).toBe('paused');
      const events = await eventsOf(ctx, caller.headers, sandbox.id);
      expect(events[0]).toMatchObject({ action: 'sandbox.idle_pause', actor_type: 'system', actor_id: null });
      // Without an idle timeout nothing is paused.
      expect((await getSandbox(ctx, caller.headers, busy.id)).json().status).toBe('running');
      // Resumed, it counts as fresh activity: not paused again at once.
      const resumed = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox.id}/resume`,
        headers: caller.headers,
      });
      expect(resumed.json().status).toBe('running');
      expect((await runSandboxJobsOnce(ctx.app)).idlePaused).toBe(0);
    });

    it('API calls on a sandbox are activity and keep it from idling', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers, { idle_timeout_seconds: 60 });
      const createdActivity = Date.parse(sandbox.last_activity_at);
      // Activity is written at most once a second: wait that out, then any call counts.
      await until(new Date(createdActivity + 1000).toISOString());
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).statusCode).toBe(200);
      await expect
        .poll(async () =>
          Date.parse((await getSandbox(ctx, caller.headers, sandbox.id)).json().last_activity_at),
        )
        .toBeGreaterThan(createdActivity);
      // 60 s after the creation it would have idled; after the call it has not.
      await runSandboxJobs(ctx.app.sandboxes, createdActivity + 60_500);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('running');
      await runSandboxJobs(ctx.app.sandboxes, Date.now() + 61_000);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('paused');
    });

    it('a command still running counts as activity; once it ends the sandbox can idle', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers, { idle_timeout_seconds: 30 });
      const build = await ctx.engine.runtime.exec(sandbox.id, { command: 'sleep', args: ['1000'] });
      build.stdin.end();
      await runSandboxJobs(ctx.app.sandboxes, Date.now() + 31_000);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('running');
      build.kill('SIGKILL');
      await build.wait();
      await expect.poll(() => ctx.engine.runtime.processes(sandbox.id)).toEqual([]);
      await runSandboxJobs(ctx.app.sandboxes, Date.now() + 31_000);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('paused');
      expect((await ctx.engine.runtime.get(sandbox.id))?.state).toBe('paused');
    });

    it('PATCH idle_timeout_seconds null turns auto-pause off', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers, { idle_timeout_seconds: 5 });
      const patched = await ctx.app.inject({
        method: 'PATCH',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
        payload: { idle_timeout_seconds: null },
      });
      expect(patched.json().idle_timeout_seconds).toBeNull();
      await runSandboxJobs(ctx.app.sandboxes, Date.now() + 3_000_000);
      expect((await getSandbox(ctx, caller.headers, sandbox.id)).json().status).toBe('running');
    });
  },
  // The timer stays out of the way: these tests run the jobs themselves.
  { runtime: true, config: { jobIntervalSeconds: 3600 } },
);

describeStores(
  'sandboxes: the jobs timer',
  (ctx) => {
    it('runs on its own every jobIntervalSeconds', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers, { timeout_seconds: 1 });
      await expect
        .poll(async () => (await getSandbox(ctx, caller.headers, sandbox.id)).statusCode, {
          timeout: 15_000,
          interval: 100,
        })
        .toBe(404);
      // The row goes first, then the runtime's sandbox.
      await expect.poll(() => ctx.engine.runtime.get(sandbox.id), { timeout: 10_000 }).toBeNull();
    });
  },
  { runtime: true, config: { jobIntervalSeconds: 0.2 } },
);
