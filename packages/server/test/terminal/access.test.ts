import { beforeAll, expect, it } from 'vitest';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, memberOf, refusal, TermClient, wsBase } from './helpers.js';

describeStores(
  'terminal: credentials, permissions and observers',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const url = (sandbox: string, query = '') => `${base}/v1/sandboxes/${sandbox}/terminal${query}`;
    const observe = (headers: { authorization: string }, sandbox: string, payload: object = {}) =>
      ctx.app.inject({ method: 'POST', url: `/v1/sandboxes/${sandbox}/observe`, headers, payload });
    /** The observer URL of an answer, on the port the suite listens on. */
    const observerUrl = (answer: { url: string }) => {
      const u = new URL(answer.url);
      return `${base}${u.pathname}${u.search}`;
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
    });

    it('refuses before upgrading, in the error shape: no credentials 401, viewer 403, wrong scope 403, another workspace 404', async () => {
      expectError(await refusal(url(id)), 'UNAUTHORIZED');
      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      expect(expectError(await refusal(url(id), viewer), 'FORBIDDEN').error.details).toEqual({
        required_role: 'developer',
      });
      const readOnly = await memberOf(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      expect(expectError(await refusal(url(id), readOnly), 'FORBIDDEN').error.details).toEqual({
        required_scope: 'sandbox:exec',
      });
      const stranger = await ctx.createCaller();
      expectError(await refusal(url(id), stranger.headers), 'SANDBOX_NOT_FOUND');
      expectError(await refusal(url('sbx_nosuchsandbox'), owner.headers), 'SANDBOX_NOT_FOUND');
      expectError(await refusal(url(id, '?session=pty_nosuchsession'), owner.headers), 'SESSION_NOT_FOUND');
      expectError(await refusal(url(id, '?cols=0'), owner.headers), 'VALIDATION_ERROR');
      // Without an upgrade the route answers 400, never a shell.
      const plain = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/terminal`,
        headers: owner.headers,
      });
      expectError(plain, 'BAD_REQUEST');
    });

    it('takes a ?token= JWT (for browsers) on the terminal only; garbage and API keys there are 401', async () => {
      const issued = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/token',
        payload: { api_key: owner.key },
      });
      expect(issued.statusCode, issued.body).toBe(200);
      const jwt = issued.json().token as string;
      const term = await TermClient.open(url(id, `?token=${encodeURIComponent(jwt)}`));
      term.type('echo jwt-$((5+5))\r');
      await term.waitForOutput(/jwt-10/);
      await term.close();

      expectError(await refusal(url(id, '?token=garbage.not.ajwt')), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?token=${owner.key}`)), 'UNAUTHORIZED');
      // Normal routes ignore ?token=: no credential there.
      const normal = await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}?token=${jwt}` });
      expectError(normal, 'UNAUTHORIZED');
      const sessions = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/terminal/sessions?token=${jwt}`,
      });
      expectError(sessions, 'UNAUTHORIZED');
    });

    it('gives observers the live output and ignores their input and resize frames', async () => {
      const dev = await TermClient.open(url(id), owner.headers);
      dev.type('echo before-$((3+4))\r');
      await dev.waitForOutput(/before-7/);

      const minted = await observe(owner.headers, id, { session_id: dev.sessionId, ttl_seconds: 600 });
      expect(minted.statusCode, minted.body).toBe(201);
      const answer = minted.json() as { id: string; token: string; expires_at: string; url: string };
      expect(answer.id).toMatch(/^tun_/);
      expect(answer.token).toMatch(/^crl_tk_/);
      expect(answer.url).toMatch(/^ws:\/\//);
      const link = new URL(answer.url);
      expect(link.pathname).toBe(`/v1/sandboxes/${id}/terminal`);
      expect(link.searchParams.get('session')).toBe(dev.sessionId);
      expect(link.searchParams.get('observe')).toBe(answer.token);
      const lifetime = Date.parse(answer.expires_at) - Date.now();
      expect(lifetime).toBeGreaterThan(500_000);
      expect(lifetime).toBeLessThanOrEqual(600_000);

      const watcher = await TermClient.open(observerUrl(answer));
      expect(await watcher.control('session')).toMatchObject({ id: dev.sessionId, observer: true });
      await watcher.waitForOutput(/before-7/); // the scrollback
      dev.type('echo live-$((4+4))\r');
      await watcher.waitForOutput(/live-8/);

      watcher.type('echo hacked-$((1+1))\r');
      watcher.sendControl({ type: 'input', data: 'echo hacked-$((2+1))\r' });
      watcher.sendControl({ type: 'resize', cols: 33, rows: 11 });
      expect((await watcher.control('error')).error).toMatchObject({ code: 'FORBIDDEN' });
      // The developer's next command runs after anything the observer could have sent.
      dev.type('stty size; echo done-$((9+9))\r');
      await dev.waitForOutput(/done-18/);
      await watcher.waitForOutput(/done-18/);
      expect(dev.output).not.toMatch(/hacked/);
      expect(watcher.output).not.toMatch(/hacked/);
      expect(dev.output).toMatch(/\r24 80\r\n/);
      await Promise.all([watcher.close(), dev.close()]);
    });

    it('binds observer tokens to one sandbox and session, with an expiry; minting takes a developer', async () => {
      const dev = await TermClient.open(url(id), owner.headers);
      const other = await TermClient.open(url(id), owner.headers);
      const minted = (await observe(owner.headers, id, { session_id: dev.sessionId })).json();
      const token = encodeURIComponent(minted.token);

      // Another session of the same sandbox, a tampered token, another sandbox: all 401.
      expectError(await refusal(url(id, `?session=${other.sessionId}&observe=${token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?session=${dev.sessionId}&observe=1${token}`)), 'UNAUTHORIZED');
      const id2 = await createSandbox(ctx, owner.headers);
      expectError(await refusal(url(id2, `?session=${dev.sessionId}&observe=${token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id2, `?observe=${token}`)), 'UNAUTHORIZED');

      // The bound session is the default: without ?session= the token still watches only its own.
      const bound = await TermClient.open(url(id, `?observe=${token}`));
      expect((await bound.control('session')).id).toBe(dev.sessionId);

      // Expired: a genuine token minted an hour ago for one minute.
      const old = await ctx.app.sandboxTokens.mint(
        {
          sandboxId: id,
          workspaceId: owner.workspaceId,
          kind: 'observe',
          sessionId: dev.sessionId,
          ttlSeconds: 60,
          createdBy: owner.userId,
        },
        Date.now() - 3600_000,
      );
      expectError(await refusal(url(id, `?session=${dev.sessionId}&observe=${old.token}`)), 'UNAUTHORIZED');
      // A shell token is not an observer token (and the other way round).
      const shell = await ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'shell',
        createdBy: owner.userId,
      });
      expectError(await refusal(url(id, `?observe=${shell.token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?tunnel=${token}`)), 'UNAUTHORIZED');

      // A token for all sessions (no session_id) watches any, by default the newest.
      const any = (await observe(owner.headers, id)).json();
      expect(new URL(any.url).searchParams.has('session')).toBe(false);
      const watchNewest = await TermClient.open(observerUrl(any));
      expect((await watchNewest.control('session')).id).toBe(other.sessionId);
      const watchFirst = await TermClient.open(
        url(id, `?session=${dev.sessionId}&observe=${encodeURIComponent(any.token)}`),
      );
      expect((await watchFirst.control('session')).id).toBe(dev.sessionId);

      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      expectError(await observe(viewer, id), 'FORBIDDEN');
      const stranger = await ctx.createCaller();
      expectError(await observe(stranger.headers, id), 'SANDBOX_NOT_FOUND');
      expectError(await observe(owner.headers, id, { session_id: 'pty_nosuchsession' }), 'SESSION_NOT_FOUND');
      expectError(await observe(owner.headers, id, { ttl_seconds: 0 }), 'VALIDATION_ERROR');
      await Promise.all([dev.close(), other.close(), bound.close(), watchNewest.close(), watchFirst.close()]);
    });

    it('guards the sessions routes: viewers list, only developers kill, another workspace is 404', async () => {
      const term = await TermClient.open(url(id), owner.headers);
      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/terminal/sessions`,
        headers: viewer,
      });
      expect(listed.statusCode, listed.body).toBe(200);
      expect(listed.json().data.map((s: { id: string }) => s.id)).toContain(term.sessionId);
      const kill = (headers: { authorization: string }) =>
        ctx.app.inject({
          method: 'DELETE',
          url: `/v1/sandboxes/${id}/terminal/sessions/${term.sessionId}`,
          headers,
        });
      expectError(await kill(viewer), 'FORBIDDEN');
      const stranger = await ctx.createCaller();
      expectError(await kill(stranger.headers), 'SANDBOX_NOT_FOUND');
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/sandboxes/${id}/terminal/sessions`,
          headers: stranger.headers,
        }),
        'SANDBOX_NOT_FOUND',
      );
      expect((await kill(owner.headers)).statusCode).toBe(204);
      await term.closed;
    });

    it('documents the terminal routes in OpenAPI', async () => {
      const doc = (await ctx.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
      const terminal = doc.paths['/v1/sandboxes/{id}/terminal'].get;
      expect(terminal.parameters.map((p: { name: string }) => p.name)).toEqual(
        expect.arrayContaining(['id', 'session', 'cols', 'rows', 'token', 'observe', 'tunnel']),
      );
      expect(doc.paths['/v1/sandboxes/{id}/terminal/sessions'].get).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/terminal/sessions/{sid}'].delete).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/observe'].post).toBeDefined();
    });

    it('records sandbox.terminal.open and sandbox.token.create in the audit events', async () => {
      const res = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/events?limit=500`,
        headers: owner.headers,
      });
      expect(res.statusCode, res.body).toBe(200);
      const actions = (res.json().data as { action: string }[]).map((e) => e.action);
      expect(actions).toContain('sandbox.terminal.open');
      expect(actions).toContain('sandbox.token.create');
      expect(actions).toContain('sandbox.terminal.kill');
    });

    it('ends the shells of a sandbox that stops (exit frame: killed), and refuses terminals on it with 409', async () => {
      const sandbox = await createSandbox(ctx, owner.headers);
      const term = await TermClient.open(url(sandbox), owner.headers);
      const stopped = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox}/stop`,
        headers: owner.headers,
      });
      expect(stopped.statusCode, stopped.body).toBe(200);
      // Killed with its sandbox: never reported as a clean exit.
      expect(await term.control('exit')).toMatchObject({ exit_code: 137, signal: 'SIGKILL' });
      await term.closed;
      expectError(await refusal(url(sandbox), owner.headers), 'INVALID_STATE');
      expectError(await observe(owner.headers, sandbox), 'INVALID_STATE');
    });

    it('reports a shell killed by deleting its sandbox as killed, not exit 0', async () => {
      const sandbox = await createSandbox(ctx, owner.headers);
      const term = await TermClient.open(url(sandbox), owner.headers);
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${sandbox}`,
        headers: owner.headers,
      });
      expect(deleted.statusCode, deleted.body).toBe(204);
      expect(await term.control('exit')).toMatchObject({ exit_code: 137, signal: 'SIGKILL' });
      await term.closed;
    });
  },
  { runtime: true },
);
