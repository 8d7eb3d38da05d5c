import { beforeAll, expect, it } from 'vitest';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, refusal, TermClient, wsBase } from '../terminal/helpers.js';

describeStores(
  'tokens: shell and observe tokens on the terminal',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const url = (sandbox: string, query = '') => `${base}/v1/sandboxes/${sandbox}/terminal${query}`;
    /** The answer's URL on the port this suite listens on. */
    const local = (answer: { url: string }) => {
      const u = new URL(answer.url);
      return `${base}${u.pathname}${u.search}`;
    };
    const mint = async (sandbox: string, path: string, payload: object) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox}/${path}`,
        headers: owner.headers,
        payload,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string; url: string; expires_at: string };
    };
    const revoke = (sandbox: string, tokenId: string) =>
      ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${sandbox}/tokens/${tokenId}`,
        headers: owner.headers,
      });
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
    });

    it('a shell token opens a full terminal with no other credential, audited as its creator with the token id', async () => {
      const shell = await mint(id, 'tunnel', { kind: 'shell' });
      const term = await TermClient.open(local(shell));
      expect(await term.control('session')).toMatchObject({ observer: false });
      term.type('echo hi-$((20+22)); whoami\r');
      await term.waitForOutput(/hi-42\r\nuser\r\n/);
      term.sendControl({ type: 'resize', cols: 100, rows: 30 });
      term.type('stty size\r');
      await term.waitForOutput(/\r30 100\r\n/);
      // Reattaching with the token works too.
      const again = await TermClient.open(`${local(shell)}&session=${term.sessionId}`);
      await again.waitForOutput(/hi-42/);
      await Promise.all([term.close(), again.close()]);

      const events = (await ctx.app.audit.listForTarget(id, { limit: 500 })).data;
      const opens = events.filter(
        (e) => e.action === 'sandbox.terminal.open' && e.details.token_id === shell.id,
      );
      expect(opens).toHaveLength(2);
      expect(opens[0]).toMatchObject({ actor_type: 'key', actor_id: owner.keyId });
      expect(opens[0]!.details).toMatchObject({ via: 'sandbox_token', token_kind: 'shell' });
      expect(JSON.stringify(events)).not.toContain(shell.token);

      const listed = await ctx.app.sandboxTokens.get(id, shell.id);
      expect(listed?.last_used_at).not.toBeNull();
    });

    it('a shell token opens nothing else: another sandbox, API routes, other token kinds, ssh/port tokens as shell', async () => {
      const shell = await mint(id, 'tunnel', { kind: 'shell' });
      const other = await createSandbox(ctx, owner.headers);
      expectError(await refusal(url(other, `?tunnel=${shell.token}`)), 'UNAUTHORIZED');
      // As an API credential it is nothing.
      for (const path of [`/v1/sandboxes/${id}`, `/v1/sandboxes/${id}/terminal/sessions`, '/v1/sandboxes']) {
        const res = await ctx.app.inject({
          method: 'GET',
          url: path,
          headers: { authorization: `Bearer ${shell.token}` },
        });
        expectError(res, 'UNAUTHORIZED');
      }
      const exec = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/exec`,
        headers: { authorization: `Bearer ${shell.token}` },
        payload: { command: 'id' },
      });
      expectError(exec, 'UNAUTHORIZED');
      // Nor as the browser ?token= JWT, nor as an observer token.
      expectError(await refusal(url(id, `?token=${shell.token}`)), 'UNAUTHORIZED');
      const dev = await TermClient.open(url(id), owner.headers);
      expectError(await refusal(url(id, `?session=${dev.sessionId}&observe=${shell.token}`)), 'UNAUTHORIZED');
      // ssh and port tokens do not open a terminal.
      const ssh = await mint(id, 'tunnel', { kind: 'ssh' });
      const port = await mint(id, 'port-forward', { port: 3000 });
      expectError(await refusal(url(id, `?tunnel=${ssh.token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?tunnel=${port.token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?tunnel=crl_tk_${'x'.repeat(40)}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?tunnel=${shell.token}&observe=${shell.token}`)), 'BAD_REQUEST');
      await dev.close();
    });

    it('an observe token is read-only and bound to its session', async () => {
      const dev = await TermClient.open(url(id), owner.headers);
      const second = await TermClient.open(url(id), owner.headers);
      const watch = await mint(id, 'observe', { session_id: dev.sessionId });
      const watcher = await TermClient.open(local(watch));
      expect(await watcher.control('session')).toMatchObject({ id: dev.sessionId, observer: true });
      watcher.type('touch /tmp/observer-wrote\r');
      // The pong comes after the server handled the observer's earlier frame: had it been
      // written to the shell, it would run before the developer's next command.
      watcher.sendControl({ type: 'ping' });
      await watcher.control('pong');
      dev.type('ls /tmp/observer-wrote 2>&1; echo mark-$((6*7))\r');
      await watcher.waitForOutput(/mark-42/);
      expect(dev.output).toMatch(/No such file/);
      expectError(
        await refusal(url(id, `?session=${second.sessionId}&observe=${watch.token}`)),
        'UNAUTHORIZED',
      );
      await Promise.all([dev.close(), second.close(), watcher.close()]);
    });

    it('an expired token is refused (minted an hour ago, and with ttl 1 after it ran out)', async () => {
      const past = Date.now() - 3600_000;
      const base = { sandboxId: id, workspaceId: owner.workspaceId, createdBy: owner.keyId, ttlSeconds: 60 };
      const shell = await ctx.app.sandboxTokens.mint({ ...base, kind: 'shell' }, past);
      const observe = await ctx.app.sandboxTokens.mint({ ...base, kind: 'observe' }, past);
      const dev = await TermClient.open(url(id), owner.headers);
      expectError(await refusal(url(id, `?tunnel=${shell.token}`)), 'UNAUTHORIZED');
      expectError(await refusal(url(id, `?observe=${observe.token}`)), 'UNAUTHORIZED');

      const short = await mint(id, 'tunnel', { kind: 'shell', ttl_seconds: 1 });
      while (Date.now() < Date.parse(short.expires_at) + 50) await new Promise((r) => setTimeout(r, 100));
      expectError(await refusal(local(short)), 'UNAUTHORIZED');
      await dev.close();
    });

    it('a terminal opened with a token is closed when the token expires; the shell lives on', async () => {
      // Minted 56 s ago for a minute: 4 s left.
      const minted = await ctx.app.sandboxTokens.mint(
        {
          sandboxId: id,
          workspaceId: owner.workspaceId,
          kind: 'shell',
          ttlSeconds: 60,
          createdBy: owner.keyId,
        },
        Date.now() - 56_000,
      );
      const term = await TermClient.open(url(id, `?tunnel=${minted.token}`));
      term.type('echo before-expiry-$((2+3))\r');
      await term.waitForOutput(/before-expiry-5/);
      expect(await term.closed).toBe(1008);
      // Closing the connection detached it: the session is still there for a developer.
      const dev = await TermClient.open(url(id, `?session=${term.sessionId}`), owner.headers);
      await dev.waitForOutput(/before-expiry-5/);
      await dev.close();
    });

    it('a revoked token is refused at once, and the terminals it opened are closed', async () => {
      const shell = await mint(id, 'tunnel', { kind: 'shell' });
      const term = await TermClient.open(local(shell));
      const watch = await mint(id, 'observe', { session_id: term.sessionId });
      const watcher = await TermClient.open(local(watch));
      const owned = await TermClient.open(url(id, `?session=${term.sessionId}`), owner.headers);

      const res = await revoke(id, shell.id);
      expect(res.statusCode, res.body).toBe(204);
      expect(await term.closed).toBe(1008);
      expectError(await refusal(local(shell)), 'UNAUTHORIZED');
      // The observer (another token) and the developer are still attached; the shell lives on.
      owned.type('echo still-$((1+2))\r');
      await watcher.waitForOutput(/still-3/);

      expect((await revoke(id, watch.id)).statusCode).toBe(204);
      expect(await watcher.closed).toBe(1008);
      expectError(await refusal(local(watch)), 'UNAUTHORIZED');
      // Revoking again is fine (nothing changes); an unknown token or another sandbox's is 404.
      expect((await revoke(id, shell.id)).statusCode).toBe(204);
      expectError(await revoke(id, 'tun_nosuchtoken'), 'TOKEN_NOT_FOUND');
      const other = await createSandbox(ctx, owner.headers);
      expectError(await revoke(other, shell.id), 'TOKEN_NOT_FOUND');
      await owned.close();

      const events = (await ctx.app.audit.listForTarget(id, { limit: 500 })).data;
      const revokes = events.filter((e) => e.action === 'sandbox.token.revoke');
      expect(revokes.map((e) => e.details.token_id).sort()).toEqual([shell.id, watch.id].sort());
      expect(revokes.find((e) => e.details.token_id === shell.id)).toMatchObject({
        actor_type: 'key',
        actor_id: owner.keyId,
        details: { kind: 'shell', closed_connections: 1 },
      });
    });

    it("a deleted sandbox's tokens open nothing", async () => {
      const sandbox = await createSandbox(ctx, owner.headers);
      const shell = await mint(sandbox, 'tunnel', { kind: 'shell' });
      const observe = await mint(sandbox, 'observe', {});
      const port = await mint(sandbox, 'port-forward', { port: 3000 });
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${sandbox}`,
        headers: owner.headers,
      });
      expect(deleted.statusCode, deleted.body).toBe(204);
      expectError(await refusal(local(shell)), 'UNAUTHORIZED');
      expectError(await refusal(local(observe)), 'UNAUTHORIZED');
      expect(
        await ctx.app.sandboxTokens.verify(port.token, { kind: 'port', sandboxId: sandbox, port: 3000 }),
      ).toBeNull();
      expect(await ctx.app.sandboxTokens.verify(shell.token, { kind: 'shell' })).toBeNull();
    });
  },
  { runtime: true },
);
