import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { addMember, describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, TermClient, wsBase } from '../terminal/helpers.js';

/** The periodic re-check in these suites (the default is 15 s). */
const CHECK_MS = 200;

describeStores(
  'tokens: open terminals end when their token ends on another replica or its creator loses access',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    /** A second app on the same store: another replica of the server (no runtime needed). */
    let replica: App;
    const terms: TermClient[] = [];

    /** A developer of the owner's workspace with an API key: who mints in these tests. */
    const developer = () => addMember(ctx, owner.workspaceId, 'developer');
    const mint = async (headers: { authorization: string }, route: 'tunnel' | 'observe', payload: object) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${route}`,
        headers,
        payload,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string };
    };
    /** Opens a terminal with a token; records the close reason. */
    const open = async (query: string) => {
      const term = await TermClient.open(`${base}/v1/sandboxes/${id}/terminal?${query}`);
      terms.push(term);
      const reason = new Promise<string>((resolve) =>
        term.socket.once('close', (_code: number, why: Buffer) => resolve(why.toString('utf8'))),
      );
      return { term, reason };
    };

    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
      ctx.app.tokenConnections.checkEvery(CHECK_MS);
      replica = await buildApp({
        config: ctx.config,
        store: ctx.store,
        logger: pino({ level: 'silent' }),
        defaultMetrics: false,
      });
      await replica.ready();
    });
    afterAll(async () => {
      for (const term of terms) term.socket.terminate();
      await replica?.close();
    });

    it('a token revoked on another replica closes the terminal it opened here (1008) at the next check; others stay', async () => {
      const shell = await mint(owner.headers, 'tunnel', { kind: 'shell' });
      const { term, reason } = await open(`tunnel=${shell.token}`);
      const watch = await mint(owner.headers, 'observe', { session_id: term.sessionId });
      const watcher = await open(`observe=${watch.token}`);
      // Checks while the token is live close nothing.
      expect(await ctx.app.tokenConnections.check()).toBe(0);
      term.type('echo live-$((20+1))\r');
      await term.waitForOutput(/live-21/);

      const res = await replica.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}/tokens/${shell.id}`,
        headers: owner.headers,
      });
      expect(res.statusCode, res.body).toBe(204);
      // The replica had no connection of it; this server closes it at its next re-check.
      expect(await term.closed).toBe(1008);
      expect(await reason).toBe('token revoked');
      // The observer (another token) is still attached and sees the shell, which lives on.
      const dev = await TermClient.open(
        `${base}/v1/sandboxes/${id}/terminal?session=${term.sessionId}`,
        owner.headers,
      );
      terms.push(dev);
      dev.type('echo after-$((40+2))\r');
      await watcher.term.waitForOutput(/after-42/);
      expect(watcher.term.closeCode).toBeNull();
      await dev.close();
    });

    it('a creator demoted to viewer: the terminals their tokens opened close', async () => {
      const dev = await developer();
      const shell = await mint(dev.headers, 'tunnel', { kind: 'shell' });
      const { term, reason } = await open(`tunnel=${shell.token}`);
      const watch = await mint(dev.headers, 'observe', { session_id: term.sessionId });
      const watcher = await open(`observe=${watch.token}`);
      await ctx.store.db
        .updateTable('members')
        .set({ role: 'viewer' })
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', dev.userId)
        .execute();
      expect(await term.closed).toBe(1008);
      expect(await reason).toBe('token no longer valid');
      expect(await watcher.term.closed).toBe(1008);
      expect(await watcher.reason).toBe('token no longer valid');
    });

    it('the API key that minted the token revoked (on another replica): its terminal closes', async () => {
      const dev = await developer();
      const shell = await mint(dev.headers, 'tunnel', { kind: 'shell' });
      const { term, reason } = await open(`tunnel=${shell.token}`);
      const res = await replica.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${dev.keyId}`,
        headers: dev.headers,
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(await term.closed).toBe(1008);
      expect(await reason).toBe('token no longer valid');
    });

    it('a token revoked on this server closes its terminal at once, without waiting for a check', async () => {
      ctx.app.tokenConnections.checkEvery(3_600_000);
      try {
        const shell = await mint(owner.headers, 'tunnel', { kind: 'shell' });
        const { term, reason } = await open(`tunnel=${shell.token}`);
        const res = await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/sandboxes/${id}/tokens/${shell.id}`,
          headers: owner.headers,
        });
        expect(res.statusCode, res.body).toBe(204);
        expect(await term.closed).toBe(1008);
        expect(await reason).toBe('token revoked');
      } finally {
        ctx.app.tokenConnections.checkEvery(CHECK_MS);
      }
    });
  },
  { runtime: true },
);
