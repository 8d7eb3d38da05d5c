import { beforeAll, expect, it } from 'vitest';
import { describeStores, expectError, memberHeaders, type StoreContext } from '../support/app.js';

type Headers = { authorization: string };

/** A running sandbox of `headers`' workspace (with secret `env`). */
async function createSandbox(ctx: StoreContext, headers: Headers, env: Record<string, string> = {}) {
  const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload: { env } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id as string;
}

function exec(ctx: StoreContext, headers: Headers, id: string, payload: unknown) {
  return ctx.app.inject({
    method: 'POST',
    url: `/v1/sandboxes/${id}/exec`,
    headers,
    payload: payload as object,
  });
}

describeStores(
  'sandboxes: exec (synchronous), processes, signal',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers, { TOKEN: 'x-secret-123' });
    });

    it('runs a command and answers its output, exit code and timing', async () => {
      const res = await exec(ctx, owner.headers, id, { command: 'echo', args: ['hi'] });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const body = res.json();
      expect(body).toMatchObject({
        exit_code: 0,
        stdout: 'hi\n',
        stderr: '',
        timed_out: false,
        truncated: { stdout: false, stderr: false },
      });
      expect(body.duration_ms).toBeGreaterThan(0);
    });

    it('answers non-zero exit codes and stderr, feeds stdin, honours cwd, user and env', async () => {
      const failed = await exec(ctx, owner.headers, id, {
        command: 'sh',
        args: ['-c', 'echo out; echo err >&2; exit 7'],
      });
      expect(failed.json()).toMatchObject({
        exit_code: 7,
        stdout: 'out\n',
        stderr: 'err\n',
        timed_out: false,
      });

      const missing = await exec(ctx, owner.headers, id, { command: 'no-such-program-here' });
      expect(missing.statusCode).toBe(200);
      expect(missing.json().exit_code).toBe(127);

      const stdin = await exec(ctx, owner.headers, id, {
        command: 'tr',
        args: ['a-z', 'A-Z'],
        stdin: 'shout\n',
      });
      expect(stdin.json()).toMatchObject({ exit_code: 0, stdout: 'SHOUT\n' });
      // A command that never reads its input still gets (and ignores) it.
      const unread = await exec(ctx, owner.headers, id, { command: 'true', stdin: 'x'.repeat(200_000) });
      expect(unread.json().exit_code).toBe(0);

      const cwd = await exec(ctx, owner.headers, id, { command: 'pwd', cwd: '/tmp' });
      expect(cwd.json().stdout).toBe('/tmp\n');

      const root = await exec(ctx, owner.headers, id, { command: 'id', args: ['-u'], user: 'root' });
      expect(root.json().stdout).toBe('0\n');
      const user = await exec(ctx, owner.headers, id, { command: 'id', args: ['-u'] });
      expect(user.json().stdout).not.toBe('0\n');

      const env = await exec(ctx, owner.headers, id, {
        command: 'sh',
        args: ['-c', 'echo "$GREETING $WHO"'],
        env: { GREETING: 'hello', WHO: 'world' },
      });
      expect(env.json().stdout).toBe('hello world\n');
    });

    it('gives every exec the sandbox secret env, under the request env', async () => {
      const secret = await exec(ctx, owner.headers, id, { command: 'printenv', args: ['TOKEN'] });
      expect(secret.json()).toMatchObject({ exit_code: 0, stdout: 'x-secret-123\n' });
      const overridden = await exec(ctx, owner.headers, id, {
        command: 'printenv',
        args: ['TOKEN'],
        env: { TOKEN: 'from-request' },
      });
      expect(overridden.json().stdout).toBe('from-request\n');
    });

    it('kills a command at its timeout and says so', async () => {
      const res = await exec(ctx, owner.headers, id, { command: 'sleep', args: ['30'], timeout_seconds: 1 });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.timed_out).toBe(true);
      expect(body.exit_code).not.toBe(0);
    });

    it('records one audit event per exec with the command name, never the arguments', async () => {
      const marker = `arg-${Date.now()}`;
      const res = await exec(ctx, owner.headers, id, { command: 'echo', args: [marker] });
      expect(res.json().stdout).toBe(`${marker}\n`);
      const events = async () =>
        ctx.store.db
          .selectFrom('audit_events')
          .select(['action', 'actor_type', 'actor_id', 'details'])
          .where('target_id', '=', id)
          .where('action', '=', 'sandbox.exec')
          .execute();
      const deadline = Date.now() + 10_000;
      let found: Awaited<ReturnType<typeof events>> = [];
      while (Date.now() < deadline) {
        found = (await events()).filter((e) => JSON.parse(e.details).command === 'echo');
        if (found.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(found.length).toBeGreaterThan(0);
      expect(found[0]).toMatchObject({ actor_type: 'key', actor_id: owner.keyId });
      expect(JSON.parse(found[0]!.details)).toMatchObject({ command: 'echo', exit_code: 0, mode: 'sync' });
      for (const event of await events()) expect(event.details).not.toContain(marker);
    });

    it('counts execs in the metrics', async () => {
      await exec(ctx, owner.headers, id, { command: 'true' });
      const metrics = await ctx.app.metrics.registry.metrics();
      expect(metrics).toMatch(/corral_exec_total\{mode="sync",result="ok"\} [1-9]/);
      expect(metrics).toMatch(/corral_exec_total\{mode="sync",result="timeout"\} [1-9]/);
      expect(metrics).toMatch(/corral_exec_duration_seconds_count\{mode="sync"\} [1-9]/);
    });

    it('rejects bad bodies with 400 VALIDATION_ERROR', async () => {
      for (const payload of [
        {},
        { command: '' },
        { command: 'echo', args: 'hi' },
        { command: 'echo', args: [1] },
        { command: 'echo', env: { 'BAD-NAME': 'x' } },
        { command: 'echo', env: { OK: 1 } },
        { command: 'echo', timeout_seconds: 86_401 },
        { command: 'echo', timeout_seconds: -1 },
        { command: 'echo', user: 'admin' },
        { command: 'echo', cwd: '' },
        { command: 'echo', shell: true },
        { command: 'ec\u0000ho' },
      ]) {
        expectError(await exec(ctx, owner.headers, id, payload), 'VALIDATION_ERROR');
      }
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/exec`,
          headers: { ...owner.headers, 'content-type': 'application/json' },
          payload: '{"command": ',
        }),
      );
    });

    it('checks role, scope and workspace', async () => {
      const viewer = await memberHeaders(ctx, owner.workspaceId, 'viewer');
      expectError(await exec(ctx, viewer, id, { command: 'true' }), 'FORBIDDEN');
      const readOnly = await memberHeaders(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      expectError(await exec(ctx, readOnly, id, { command: 'true' }), 'FORBIDDEN');
      const developer = await memberHeaders(ctx, owner.workspaceId, 'developer', ['sandbox:exec']);
      expect((await exec(ctx, developer, id, { command: 'true' })).json().exit_code).toBe(0);

      const stranger = await ctx.createCaller();
      expectError(await exec(ctx, stranger.headers, id, { command: 'true' }), 'SANDBOX_NOT_FOUND');
      expectError(
        await exec(ctx, owner.headers, 'sbx_nosuchsandbox', { command: 'true' }),
        'SANDBOX_NOT_FOUND',
      );

      const processes = `/v1/sandboxes/${id}/processes`;
      expect((await ctx.app.inject({ method: 'GET', url: processes, headers: viewer })).statusCode).toBe(200);
      expectError(
        await ctx.app.inject({ method: 'GET', url: processes, headers: stranger.headers }),
        'SANDBOX_NOT_FOUND',
      );
      const signal = `/v1/sandboxes/${id}/processes/12345/signal`;
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: signal,
          headers: viewer,
          payload: { signal: 'SIGKILL' },
        }),
        'FORBIDDEN',
      );
      expectError(
        await ctx.app.inject({ method: 'POST', url: signal, headers: stranger.headers, payload: {} }),
        'SANDBOX_NOT_FOUND',
      );
    });

    it('signals: unknown pid is 404 PROCESS_NOT_FOUND, bad signals and pids are 400', async () => {
      const url = (pid: string | number) => `/v1/sandboxes/${id}/processes/${pid}/signal`;
      expectError(
        await ctx.app.inject({ method: 'POST', url: url(999_999), headers: owner.headers, payload: {} }),
        'PROCESS_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: url(999_999),
          headers: owner.headers,
          payload: { signal: 'SIGSEGV' },
        }),
        'VALIDATION_ERROR',
      );
      expectError(
        await ctx.app.inject({ method: 'POST', url: url('abc'), headers: owner.headers, payload: {} }),
        'VALIDATION_ERROR',
      );
      expectError(
        await ctx.app.inject({ method: 'POST', url: url(0), headers: owner.headers, payload: {} }),
        'VALIDATION_ERROR',
      );
    });

    it('refuses to exec in a sandbox that is not running (409 INVALID_STATE)', async () => {
      const other = await createSandbox(ctx, owner.headers);
      await ctx.engine.runtime.stop(other);
      await ctx.app.sandboxes.setStatus(other, 'stopped');
      const err = expectError(await exec(ctx, owner.headers, other, { command: 'true' }), 'INVALID_STATE');
      expect(err.error.details).toMatchObject({ status: 'stopped', action: 'exec' });
    });
  },
  { runtime: true },
);

describeStores(
  'sandboxes: exec output cap',
  (ctx) => {
    it('cuts each stream at the cap, flags it, still reads the rest and never splits a character', async () => {
      const owner = await ctx.createCaller();
      const id = await createSandbox(ctx, owner.headers);
      const big = await exec(ctx, owner.headers, id, {
        // 8 MiB of output on stdout, a little on stderr: the command must not block on its pipe.
        command: 'sh',
        args: ['-c', 'head -c 8388608 /dev/zero | tr "\\000" a; echo done >&2'],
      });
      expect(big.statusCode, big.body.slice(0, 300)).toBe(200);
      const body = big.json();
      expect(body.exit_code).toBe(0);
      expect(body.stdout).toBe('a'.repeat(4096));
      expect(body.stderr).toBe('done\n');
      expect(body.truncated).toEqual({ stdout: true, stderr: false });

      // "é\n" is 3 bytes: the 4096th byte is the first half of an "é", which is dropped.
      const multibyte = await exec(ctx, owner.headers, id, {
        command: 'sh',
        args: ['-c', 'yes é | head -n 5000'],
      });
      const cut = multibyte.json();
      expect(cut.truncated.stdout).toBe(true);
      expect(cut.stdout).not.toContain('\uFFFD');
      expect(Buffer.byteLength(cut.stdout)).toBe(4095);
      expect(cut.stdout).toBe('é\n'.repeat(1365));
    });
  },
  { runtime: true, config: { execOutputLimitBytes: 4096 } },
);
