import { afterAll, beforeAll, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { SESSION_COOKIE_NAME } from '../../src/openapi.js';
import { startSession } from '../../src/services/sessions.js';
import { isoNow } from '../../src/store/index.js';
import { MuxClient } from '../mux/client.js';
import { echo, listenPort, openWs, previewHost } from '../preview/helpers.js';
import { type SandboxServer, startSandboxServer } from '../preview/sandbox-server.js';
import { addMember, describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, TermClient, wsBase } from '../terminal/helpers.js';

/** The periodic re-check in this suite (the default is 15 s). */
const CHECK_MS = 200;
/** A re-check interval no test waits for: what closes then closed at once. */
const NEVER_MS = 3_600_000;

describeStores(
  'connections opened with an API key, a JWT or a session end with their credential or role',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const sockets: WebSocket[] = [];
    const servers: SandboxServer[] = [];

    /** A new developer of the owner's workspace with an API key. */
    const developer = () => addMember(ctx, owner.workspaceId, 'developer');
    /** A terminal opened with `headers` or a query; its close reason. */
    const terminal = async (headers: Record<string, string>, query = '') => {
      const term = await TermClient.open(`${base}/v1/sandboxes/${id}/terminal${query}`, headers);
      sockets.push(term.socket);
      const reason = new Promise<string>((resolve) =>
        term.socket.once('close', (_code: number, why: Buffer) => resolve(why.toString('utf8'))),
      );
      return { term, reason };
    };
    /** The terminal still runs commands. */
    const alive = async (term: TermClient, n: number) => {
      term.type(`echo alive-$((${n}+1))\r`);
      await term.waitForOutput(new RegExp(`alive-${n + 1}`));
      expect(term.closeCode).toBeNull();
    };
    const revokeKey = async (keyId: string, headers: { authorization: string }) => {
      const res = await ctx.app.inject({ method: 'DELETE', url: `/v1/account/keys/${keyId}`, headers });
      expect(res.statusCode, res.body).toBe(204);
    };
    /** Runs `body` with no periodic re-check: only this server's routes close connections. */
    const withoutChecks = async (body: () => Promise<void>) => {
      ctx.app.tokenConnections.checkEvery(NEVER_MS);
      try {
        await body();
      } finally {
        ctx.app.tokenConnections.checkEvery(CHECK_MS);
      }
    };

    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
      ctx.app.tokenConnections.checkEvery(CHECK_MS);
    });
    afterAll(() => {
      for (const socket of sockets) socket.terminate();
      for (const server of servers) server.stop();
    });

    it('a terminal opened with an API key closes (1008) at once when the key is revoked through the route; another key’s stays', async () => {
      await withoutChecks(async () => {
        const dev = await developer();
        const other = await developer();
        const { term, reason } = await terminal(dev.headers);
        const kept = await terminal(other.headers);
        await alive(term, 1);
        await revokeKey(dev.keyId, dev.headers);
        expect(await term.closed).toBe(1008);
        expect(await reason).toBe('credential revoked');
        await alive(kept.term, 2);
      });
    });

    it('a key revoked in the store behind the server’s back (another replica) closes its terminal at the next check', async () => {
      const dev = await developer();
      const other = await developer();
      const { term, reason } = await terminal(dev.headers);
      const kept = await terminal(other.headers);
      // Checks while everything is live close nothing of these.
      await ctx.app.tokenConnections.check();
      await alive(term, 3);
      await ctx.store.db
        .updateTable('api_keys')
        .set({ revoked_at: isoNow() })
        .where('id', '=', dev.keyId)
        .execute();
      expect(await term.closed).toBe(1008);
      expect(await reason).toBe('credential revoked');
      await alive(kept.term, 4);
    });

    it('a terminal opened with a ?token= JWT is tracked by its key: it lives while the key does, and ends with it', async () => {
      const dev = await developer();
      const other = await developer();
      const issue = async (key: string) => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/auth/token',
          payload: { api_key: key },
        });
        expect(res.statusCode, res.body).toBe(200);
        return encodeURIComponent(res.json().token as string);
      };
      const { term, reason } = await terminal({}, `?token=${await issue(dev.key)}`);
      const kept = await terminal({}, `?token=${await issue(other.key)}`);
      await ctx.app.tokenConnections.check();
      await alive(term, 5);
      // An expired key ends it too (the JWT itself is not re-read).
      await ctx.store.db
        .updateTable('api_keys')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('id', '=', dev.keyId)
        .execute();
      expect(await term.closed).toBe(1008);
      expect(await reason).toBe('credential expired');
      await alive(kept.term, 6);
    });

    it('a terminal opened with a dashboard session closes at once on logout, and at the next check when the session expires', async () => {
      const session = async () => {
        const dev = await developer();
        const started = await startSession({ store: ctx.store, audit: ctx.app.audit }, dev.userId, {
          ip: null,
          userAgent: null,
        });
        return { ...started, cookie: `${SESSION_COOKIE_NAME}=${started.token}` };
      };
      const out = await session();
      const lapsed = await session();
      const other = await session();
      const a = await terminal({ cookie: out.cookie });
      const b = await terminal({ cookie: lapsed.cookie });
      const kept = await terminal({ cookie: other.cookie });
      await withoutChecks(async () => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/auth/logout',
          headers: { cookie: out.cookie, 'x-csrf-token': out.csrfToken },
        });
        expect(res.statusCode, res.body).toBe(204);
        expect(await a.term.closed).toBe(1008);
        expect(await a.reason).toBe('credential revoked');
        expect(b.term.closeCode).toBeNull();
      });
      await ctx.store.db
        .updateTable('sessions')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('id', '=', lapsed.id)
        .execute();
      expect(await b.term.closed).toBe(1008);
      expect(await b.reason).toBe('credential expired');
      await alive(kept.term, 7);
    });

    it('a /ws connection closes (1008) when its user is demoted to viewer through the route, or removed in the store', async () => {
      const url = `${base}/v1/sandboxes/${id}/ws`;
      const demoted = await developer();
      const removed = await developer();
      const other = await developer();
      const a = await MuxClient.connect(url, demoted.headers);
      const b = await MuxClient.connect(url, removed.headers);
      const kept = await MuxClient.connect(url, other.headers);
      sockets.push(a.socket, b.socket, kept.socket);
      await withoutChecks(async () => {
        const res = await ctx.app.inject({
          method: 'PUT',
          url: `/v1/workspaces/${owner.workspaceId}/members/${demoted.userId}`,
          headers: owner.headers,
          payload: { role: 'viewer' },
        });
        expect(res.statusCode, res.body).toBe(200);
        expect(await a.closed).toBe(1008);
        expect(a.closeReason).toBe('no longer allowed');
        expect(b.closeCode).toBeNull();
      });
      await ctx.store.db
        .deleteFrom('members')
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', removed.userId)
        .execute();
      expect(await b.closed).toBe(1008);
      expect(b.closeReason).toBe('no longer allowed');
      const run = await kept.open({ type: 'exec', command: 'echo', args: ['still-here'] });
      expect(run.ok, JSON.stringify(run.body)).toBe(true);
      expect(kept.closeCode).toBeNull();
    });

    it('a preview WebSocket opened with Authorization: Bearer is cut when the key is revoked; another key’s stays', async () => {
      const serverPort = await listenPort(ctx);
      servers.push(await startSandboxServer(ctx, id, 3000));
      const host = previewHost(id, 3000, serverPort);
      const dev = await developer();
      const other = await developer();
      const cut = await openWs(serverPort, host, '/echo', dev.headers);
      const kept = await openWs(serverPort, host, '/echo', other.headers);
      if (typeof cut === 'number' || typeof kept === 'number')
        throw new Error(`upgrade refused: ${cut} ${kept}`);
      sockets.push(cut, kept);
      expect((await echo(cut, 'hi')).data.toString()).toBe('hi');
      const closed = new Promise((resolve) => cut.once('close', resolve));
      await withoutChecks(async () => {
        await revokeKey(dev.keyId, dev.headers);
        await closed;
      });
      expect((await echo(kept, 'still')).data.toString()).toBe('still');
    });
  },
  { runtime: true },
);
