import { beforeAll, expect, it } from 'vitest';
import { terminalsOf } from '../../src/services/terminals/index.js';
import { DETACHED_SESSION_TTL_MS } from '../../src/services/terminals/manager.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, TermClient, wsBase } from './helpers.js';

describeStores(
  'terminal: WebSocket PTY sessions',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const url = (query = '') => `${base}/v1/sandboxes/${id}/terminal${query}`;
    const sessions = async () => {
      const res = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/terminal/sessions`,
        headers: owner.headers,
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as { id: string; clients: number; cols: number; rows: number; pid: number }[];
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers, { MY_SECRET: 'sekrit-terminal-value-42' });
      base = await wsBase(ctx);
    });

    it('runs a login shell as user: typed input runs, its output comes back; the secret env is set', async () => {
      const term = await TermClient.open(url(), owner.headers);
      const session = await term.control('session');
      expect(session).toMatchObject({ cols: 80, rows: 24, observer: false });
      expect(session.id).toMatch(/^pty_/);
      // The arithmetic makes the answer differ from the echoed command line.
      term.type('echo hi$((40+2)) $(id -un) $TERM\r');
      await term.waitForOutput(/hi42 user xterm-256color/);
      term.type('echo "[$MY_SECRET]"\r');
      await term.waitForOutput(/\[sekrit-terminal-value-42\]/);
      await term.close();
    });

    it('resizes on a resize frame (stty size prints the new rows and cols) and on ?cols=&rows=', async () => {
      const term = await TermClient.open(url('?cols=100&rows=30'), owner.headers);
      expect(await term.control('session')).toMatchObject({ cols: 100, rows: 30 });
      term.type('stty size\r');
      await term.waitForOutput(/\r30 100\r\n/);
      term.sendControl({ type: 'resize', cols: 132, rows: 43 });
      expect(await term.control('resize')).toEqual({ type: 'resize', cols: 132, rows: 43 });
      term.type('stty size\r');
      await term.waitForOutput(/\r43 132\r\n/);
      const listed = (await sessions()).find((s) => s.id === term.sessionId);
      expect(listed).toMatchObject({ cols: 132, rows: 43, clients: 1 });
      // A bad control frame is answered with an error frame; the connection stays usable.
      term.sendControl({ type: 'resize', cols: 0, rows: 'x' });
      expect((await term.control('error')).error).toMatchObject({ code: 'VALIDATION_ERROR' });
      term.sendControl({ type: 'input', data: 'echo via-$((6*7))-control\r' });
      await term.waitForOutput(/via-42-control/);
      await term.close();
    });

    it('keeps the session after a disconnect: reattach replays the scrollback and the shell is alive', async () => {
      const first = await TermClient.open(url(), owner.headers);
      first.type('KEPT=still-$((20+3)); echo marker-$((1+1))\r');
      await first.waitForOutput(/marker-2/);
      await first.close();
      // The server notices the close asynchronously: wait until the session has no client.
      const deadline = Date.now() + 10_000;
      while ((await sessions()).find((s) => s.id === first.sessionId)?.clients !== 0) {
        if (Date.now() > deadline) throw new Error('the session kept its client');
        await new Promise((r) => setTimeout(r, 20));
      }

      const again = await TermClient.open(url(`?session=${first.sessionId}`), owner.headers);
      const session = await again.control('session');
      expect(session.id).toBe(first.sessionId);
      expect(session.replayed_bytes).toBeGreaterThan(0);
      await again.waitForOutput(/marker-2/); // from the scrollback, before typing anything
      again.type('echo "$KEPT"\r');
      await again.waitForOutput(/still-23/);
      await again.close();
    });

    it('lets several clients share a session: all see the output, any may type', async () => {
      const a = await TermClient.open(url(), owner.headers);
      const b = await TermClient.open(url(`?session=${a.sessionId}`), owner.headers);
      a.type('echo from-a-$((2*5))\r');
      await a.waitForOutput(/from-a-10/);
      await b.waitForOutput(/from-a-10/);
      b.type('echo from-b-$((3*5))\r');
      await a.waitForOutput(/from-b-15/);
      await b.waitForOutput(/from-b-15/);
      expect((await sessions()).find((s) => s.id === a.sessionId)?.clients).toBe(2);
      await Promise.all([a.close(), b.close()]);
    });

    it('sends the exit frame and closes every socket when the shell exits; the session is gone', async () => {
      const a = await TermClient.open(url(), owner.headers);
      const b = await TermClient.open(url(`?session=${a.sessionId}`), owner.headers);
      a.type('exit 3\r');
      expect(await a.control('exit')).toMatchObject({ exit_code: 3 });
      expect(await b.control('exit')).toMatchObject({ exit_code: 3 });
      expect(await a.closed).toBe(1000);
      expect(await b.closed).toBe(1000);
      expect((await sessions()).map((s) => s.id)).not.toContain(a.sessionId);
    });

    it('lists sessions and kills one with DELETE (its clients get the exit frame); unknown is 404', async () => {
      const term = await TermClient.open(url(), owner.headers);
      const listed = (await sessions()).find((s) => s.id === term.sessionId);
      expect(listed).toMatchObject({ clients: 1, cols: 80, rows: 24 });
      expect(listed!.pid).toBeGreaterThan(0);
      expect(Date.parse((listed as unknown as { created_at: string }).created_at)).not.toBeNaN();

      const del = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}/terminal/sessions/${term.sessionId}`,
        headers: owner.headers,
      });
      expect(del.statusCode, del.body).toBe(204);
      expect((await term.control('exit')).exit_code).toBe(137);
      await term.closed;
      expect((await sessions()).map((s) => s.id)).not.toContain(term.sessionId);

      const again = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}/terminal/sessions/${term.sessionId}`,
        headers: owner.headers,
      });
      expectError(again, 'SESSION_NOT_FOUND');
    });

    it('kills a session left without a client for the idle TTL, and only that one', async () => {
      const kept = await TermClient.open(url(), owner.headers);
      const left = await TermClient.open(url(), owner.headers);
      const leftPid = (await sessions()).find((s) => s.id === left.sessionId)!.pid;
      await left.close();
      const deadline = Date.now() + 10_000;
      while ((await sessions()).find((s) => s.id === left.sessionId)?.clients !== 0) {
        if (Date.now() > deadline) throw new Error('the session kept its client');
        await new Promise((r) => setTimeout(r, 20));
      }
      const manager = terminalsOf(ctx.app).sessions;
      manager.sweep(Date.now() + DETACHED_SESSION_TTL_MS - 60_000);
      expect((await sessions()).map((s) => s.id)).toContain(left.sessionId);
      manager.sweep(Date.now() + DETACHED_SESSION_TTL_MS + 1000);
      const ids = (await sessions()).map((s) => s.id);
      expect(ids).not.toContain(left.sessionId);
      expect(ids).toContain(kept.sessionId);
      // The shell itself is gone from the sandbox.
      const gone = Date.now() + 10_000;
      while ((await ctx.engine.runtime.processes(id)).some((p) => p.pid === leftPid)) {
        if (Date.now() > gone) throw new Error('the idle shell is still running');
        await new Promise((r) => setTimeout(r, 50));
      }
      kept.type('echo kept-$((7*6))\r');
      await kept.waitForOutput(/kept-42/);
      await kept.close();
    });
  },
  { runtime: true },
);
