import type { Runtime } from '@corral/runtime';
import { expect, it } from 'vitest';
import { describeStores, expectError, memberHeaders } from '../support/app.js';

/** Runs `script` with sh inside sandbox `id` through the runtime; its stdout and exit code. */
async function shell(runtime: Runtime, id: string, script: string): Promise<{ out: string; code: number }> {
  const proc = await runtime.exec(id, { command: 'sh', args: ['-c', script] });
  proc.stdin.end();
  let out = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  proc.stderr.resume();
  const status = await proc.wait();
  return { out, code: status.exitCode };
}

/** A runtime call's RuntimeError code (or 'ok'). */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describeStores(
  'sandboxes: lifecycle actions',
  (ctx) => {
    type Headers = { authorization: string };
    const create = async (headers: Headers, payload: Record<string, unknown> = {}) => {
      const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; status: string; started_at: string; expires_at: string };
    };
    const act = (headers: Headers, id: string, action: string, payload?: unknown) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${action}`,
        headers,
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
    const ok = async (headers: Headers, id: string, action: string) => {
      const res = await act(headers, id, action);
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { id: string; status: string; started_at: string; error: string | null };
    };

    it('pause freezes every process and resume thaws them', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const rt = ctx.engine.runtime;
      const ticker = await rt.exec(id, {
        command: 'sh',
        args: ['-c', 'while :; do date +%s%N >> /tmp/ticks; sleep 0.02; done'],
      });
      ticker.stdin.end();
      await expect
        .poll(async () => Number((await shell(rt, id, 'cat /tmp/ticks 2>/dev/null | wc -l')).out.trim()))
        .toBeGreaterThan(2);

      const paused = await ok(caller.headers, id, 'pause');
      expect(paused.status).toBe('paused');
      const pausedAtNs = BigInt(Date.now()) * 1_000_000n;
      expect((await rt.get(id))?.state).toBe('paused');
      expect(await codeOf(rt.exec(id, { command: 'true' }))).toBe('INVALID_STATE');
      // The frozen window: nothing inside may run during it.
      await new Promise((resolve) => setTimeout(resolve, 400));
      const resumingAtNs = BigInt(Date.now()) * 1_000_000n;

      expect((await ok(caller.headers, id, 'resume')).status).toBe('running');
      expect((await rt.get(id))?.state).toBe('running');
      const ticks = (await shell(rt, id, 'cat /tmp/ticks')).out.trim().split('\n').map(BigInt);
      expect(ticks.filter((t) => t > pausedAtNs && t < resumingAtNs)).toEqual([]);
      // And it runs again after the thaw.
      await expect
        .poll(async () => (await shell(rt, id, 'tail -n 1 /tmp/ticks')).out.trim())
        .not.toBe(String(ticks.at(-1)));
      ticker.kill('SIGKILL');
    });

    it('stop kills every process (status stopping → stopped) and start boots it again', async () => {
      const caller = await ctx.createCaller();
      const created = await create(caller.headers);
      const rt = ctx.engine.runtime;
      const sleeper = await rt.exec(created.id, { command: 'sleep', args: ['1000'] });
      sleeper.stdin.end();
      expect((await shell(rt, created.id, 'pgrep -x sleep >/dev/null && echo yes')).out).toBe('yes\n');

      const stopped = await ok(caller.headers, created.id, 'stop');
      expect(stopped.status).toBe('stopped');
      expect((await rt.get(created.id))?.state).toBe('stopped');
      expect((await sleeper.wait()).exitCode).not.toBe(0);

      const started = await ok(caller.headers, created.id, 'start');
      expect(started.status).toBe('running');
      expect(Date.parse(started.started_at)).toBeGreaterThan(Date.parse(created.started_at));
      expect((await shell(rt, created.id, 'pgrep -x sleep || echo no-sleep')).out).toBe('no-sleep\n');
    });

    it('hibernate keeps the filesystem and resume boots it with the files', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const rt = ctx.engine.runtime;
      expect((await shell(rt, id, 'echo warm > ~/state.txt')).code).toBe(0);
      expect((await ok(caller.headers, id, 'hibernate')).status).toBe('hibernated');
      expect((await rt.get(id))?.state).toBe('hibernated');
      const resumed = await ok(caller.headers, id, 'resume');
      expect(resumed.status).toBe('running');
      expect((await shell(rt, id, 'cat ~/state.txt')).out).toBe('warm\n');
    });

    it('an action in the wrong state is 409 INVALID_STATE naming the current status', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const wrong = async (action: string, status: string) => {
        const body = expectError(await act(caller.headers, id, action), 'INVALID_STATE');
        expect(body.error.details).toMatchObject({ status, action });
        expect(body.error.message).toContain(status);
      };
      await wrong('start', 'running');
      await wrong('resume', 'running');
      await ok(caller.headers, id, 'pause');
      await wrong('pause', 'paused');
      await wrong('start', 'paused');
      await ok(caller.headers, id, 'stop');
      await wrong('stop', 'stopped');
      await wrong('pause', 'stopped');
      await wrong('resume', 'stopped');
      await wrong('hibernate', 'stopped');
      expect((await ctx.engine.runtime.get(id))?.state).toBe('stopped');
    });

    it('two actions at once on one sandbox run one after the other', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const [a, b] = await Promise.all([act(caller.headers, id, 'pause'), act(caller.headers, id, 'pause')]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
      const [stop, resume] = await Promise.all([
        act(caller.headers, id, 'stop'),
        act(caller.headers, id, 'resume'),
      ]);
      // Resume first: both succeed; stop first: resume sees `stopped` (409). Stopped either way.
      expect(stop.statusCode).toBe(200);
      expect([200, 409]).toContain(resume.statusCode);
      const final = (
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}`, headers: caller.headers })
      ).json();
      expect(final.status).toBe('stopped');
      expect((await ctx.engine.runtime.get(id))?.state).toBe('stopped');
    });

    it('a delete racing an action leaves the sandbox deleted, never in error', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const [stop, del] = await Promise.all([
        act(caller.headers, id, 'stop'),
        ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}`, headers: caller.headers }),
      ]);
      expect(del.statusCode).toBe(204);
      if (stop.statusCode !== 200) expectError(stop, 'SANDBOX_NOT_FOUND');
      const row = await ctx.store.db
        .selectFrom('sandboxes')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('deleted');
      expect(await ctx.engine.runtime.get(id)).toBeNull();
    });

    it('a runtime failure leaves the sandbox in error with its message; from error only start is allowed', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      // The runtime loses the sandbox behind the server's back: stop cannot succeed.
      await ctx.engine.runtime.destroy(id);
      expectError(await act(caller.headers, id, 'stop'), 'SANDBOX_NOT_FOUND');
      const got = (
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}`, headers: caller.headers })
      ).json();
      expect(got.status).toBe('error');
      expect(got.error).toMatch(/\S/);
      // From error only start is allowed; it fails again the same way here.
      expectError(await act(caller.headers, id, 'pause'), 'INVALID_STATE');
      expectError(await act(caller.headers, id, 'start'), 'SANDBOX_NOT_FOUND');
    });

    it('keepalive extends expires_at by the timeout or by {seconds}', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers, { timeout_seconds: 600 });
      const expiresAt = async () =>
        Date.parse(
          (
            await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}`, headers: caller.headers })
          ).json().expires_at,
        );
      let before = Date.now();
      expect((await act(caller.headers, id, 'keepalive', { seconds: 5000 })).statusCode).toBe(204);
      let after = Date.now();
      let expires = await expiresAt();
      expect(expires).toBeGreaterThanOrEqual(before + 5_000_000 - 1);
      expect(expires).toBeLessThanOrEqual(after + 5_000_000 + 1);

      before = Date.now();
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/keepalive`,
        headers: caller.headers,
      });
      expect(res.statusCode, res.body).toBe(204);
      after = Date.now();
      expires = await expiresAt();
      expect(expires).toBeGreaterThanOrEqual(before + 600_000 - 1);
      expect(expires).toBeLessThanOrEqual(after + 600_000 + 1);

      expectError(await act(caller.headers, id, 'keepalive', { seconds: 0 }), 'VALIDATION_ERROR');
      expectError(await act(caller.headers, id, 'keepalive', { seconds: 86_401 }), 'VALIDATION_ERROR');
      expectError(await act(caller.headers, id, 'keepalive', { minutes: 3 }), 'VALIDATION_ERROR');
    });

    it('viewers, read-only keys and other workspaces cannot act', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const viewer = await memberHeaders(ctx, caller.workspaceId, 'viewer');
      const readOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:read']);
      const stranger = (await ctx.createCaller()).headers;
      for (const action of ['start', 'stop', 'pause', 'resume', 'hibernate', 'keepalive']) {
        expect(expectError(await act(viewer, id, action), 'FORBIDDEN').error.details).toMatchObject({
          required_role: 'developer',
        });
        expect(expectError(await act(readOnly, id, action), 'FORBIDDEN').error.details).toMatchObject({
          required_scope: 'sandbox:write',
        });
        expectError(await act(stranger, id, action), 'SANDBOX_NOT_FOUND');
      }
      expectError(await act(caller.headers, 'sbx_doesnotexist', 'pause'), 'SANDBOX_NOT_FOUND');
      // None of it changed anything; the viewer may still read it.
      const got = await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}`, headers: viewer });
      expect(got.json().status).toBe('running');
      expect((await ctx.engine.runtime.get(id))?.state).toBe('running');
    });

    it('a deleted sandbox has no lifecycle (404)', async () => {
      const caller = await ctx.createCaller();
      const { id } = await create(caller.headers);
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      expectError(await act(caller.headers, id, 'start'), 'SANDBOX_NOT_FOUND');
      expectError(await act(caller.headers, id, 'keepalive'), 'SANDBOX_NOT_FOUND');
    });
  },
  { runtime: true },
);

describeStores(
  'sandboxes: PATCH',
  (ctx) => {
    type Headers = { authorization: string };
    const patch = (headers: Headers, id: string, payload: unknown) =>
      ctx.app.inject({
        method: 'PATCH',
        url: `/v1/sandboxes/${id}`,
        headers,
        payload: payload as Record<string, unknown>,
      });
    const create = async (headers: Headers, payload: Record<string, unknown> = {}) => {
      const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload });
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    };

    it('updates each field, stores it, and hands the network policy to the runtime', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await create(caller.headers, {
        name: 'before',
        metadata: { keep: 'no' },
        idle_timeout_seconds: 300,
        budget_usd: '3',
      });
      const before = Date.now();
      const res = await patch(caller.headers, sandbox.id, {
        name: 'after',
        timeout_seconds: 900,
        idle_timeout_seconds: 120,
        resources: { cpu: 2 },
        metadata: { team: 'x' },
        budget_usd: 12.5,
        network: { mode: 'allowlist', allow: ['example.com', '10.0.0.0/8'] },
      });
      const after = Date.now();
      expect(res.statusCode, res.body).toBe(200);
      const updated = res.json();
      expect(updated).toMatchObject({
        id: sandbox.id,
        name: 'after',
        timeout_seconds: 900,
        idle_timeout_seconds: 120,
        resources: { ...sandbox.resources, cpu: 2 },
        metadata: { team: 'x' },
        budget: { limit_usd: '12.50' },
        network: { mode: 'allowlist', allow: ['example.com', '10.0.0.0/8'] },
        status: 'running',
      });
      // The new timeout counts from the update.
      expect(Date.parse(updated.expires_at)).toBeGreaterThanOrEqual(before + 900_000 - 1);
      expect(Date.parse(updated.expires_at)).toBeLessThanOrEqual(after + 900_000 + 1);
      expect((await ctx.engine.runtime.get(sandbox.id))?.network).toEqual({
        mode: 'allowlist',
        allow: ['example.com', '10.0.0.0/8'],
      });
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect(got.json()).toMatchObject({
        name: 'after',
        metadata: { team: 'x' },
        budget: { limit_usd: '12.50' },
      });

      // null clears; a stopped sandbox's policy is kept for its next boot.
      const stop = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox.id}/stop`,
        headers: caller.headers,
      });
      expect(stop.statusCode).toBe(200);
      const cleared = await patch(caller.headers, sandbox.id, {
        idle_timeout_seconds: null,
        budget_usd: null,
        network: { mode: 'none' },
      });
      expect(cleared.statusCode, cleared.body).toBe(200);
      expect(cleared.json()).toMatchObject({
        idle_timeout_seconds: null,
        budget: { limit_usd: null },
        network: { mode: 'none' },
        status: 'stopped',
      });
      expect((await ctx.engine.runtime.get(sandbox.id))?.network).toEqual({ mode: 'none' });
    });

    it('bad input is 400 and changes nothing', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await create(caller.headers);
      for (const body of [
        {},
        { nickname: 'x' },
        { name: '' },
        { timeout_seconds: 0 },
        { timeout_seconds: 86_401 },
        { idle_timeout_seconds: -1 },
        { resources: { cpu: 0 } },
        { resources: { gpus: 1 } },
        { budget_usd: '-1' },
        { network: { mode: 'allowlist' } },
        { network: { mode: 'none', allow: ['example.com'] } },
        { network: { mode: 'intranet' } },
      ]) {
        expectError(await patch(caller.headers, sandbox.id, body), 'VALIDATION_ERROR');
      }
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: caller.headers,
      });
      expect({ ...got.json(), last_activity_at: null }).toEqual({ ...sandbox, last_activity_at: null });
    });

    it('a sandbox in the middle of a runtime call (starting, stopping) is not updated: 409', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await create(caller.headers);
      for (const status of ['starting', 'stopping'] as const) {
        await ctx.app.sandboxes.setStatus(sandbox.id, status);
        const body = expectError(await patch(caller.headers, sandbox.id, { name: 'x' }), 'INVALID_STATE');
        expect(body.error.details).toMatchObject({ status });
        expectError(
          await ctx.app.inject({
            method: 'POST',
            url: `/v1/sandboxes/${sandbox.id}/pause`,
            headers: caller.headers,
          }),
          'INVALID_STATE',
        );
      }
      await ctx.app.sandboxes.setStatus(sandbox.id, 'running');
      expect((await patch(caller.headers, sandbox.id, { name: 'x' })).json().name).toBe('x');
    });

    it('viewers, read-only keys and other workspaces cannot update', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await create(caller.headers, { name: 'mine' });
      const viewer = await memberHeaders(ctx, caller.workspaceId, 'viewer');
      const readOnly = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:read']);
      const stranger = (await ctx.createCaller()).headers;
      expectError(await patch(viewer, sandbox.id, { name: 'x' }), 'FORBIDDEN');
      expectError(await patch(readOnly, sandbox.id, { name: 'x' }), 'FORBIDDEN');
      expectError(await patch(stranger, sandbox.id, { name: 'x' }), 'SANDBOX_NOT_FOUND');
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}`,
        headers: viewer,
      });
      expect(got.json().name).toBe('mine');
    });
  },
  { runtime: true },
);
