import { afterAll, beforeAll, expect, it } from 'vitest';
import { isoNow } from '../../src/store/db.js';
import { addMember, describeStores, type StoreContext } from '../support/app.js';
import { echo, listenPort, openWs, previewHost, send, waitFor } from './helpers.js';
import { type SandboxServer, startSandboxServer } from './sandbox-server.js';

/**
 * The proxy trusts a checked credential and a port's settings for up to 5 s (so a busy preview
 * does not read the store on every request). These tests hold it to its bar: what is revoked or
 * closed on this server stops at once; what changes behind its back (another replica writing
 * the store) stops within those 5 s.
 */
describeStores(
  'preview proxy: revoked keys and tokens and ports made private stop working',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let serverPort: number;
    const servers: SandboxServer[] = [];
    const host = (port = 3000) => previewHost(id, port, serverPort);
    const statusWith = async (headers: Record<string, string> = {}, port = 3000) =>
      (await send(serverPort, host(port), { headers })).status;
    /** A developer key in the owner's workspace: its id and headers. */
    const developerKey = async () => {
      const member = await addMember(ctx, owner.workspaceId, 'developer', ['sandbox:exec']);
      return { id: member.keyId, userId: member.userId, headers: member.headers };
    };
    const mint = (port = 3000) =>
      ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'port',
        port,
        ttlSeconds: 600,
        createdBy: owner.keyId,
      });

    beforeAll(async () => {
      owner = await ctx.createCaller();
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: {},
      });
      expect(created.statusCode, created.body).toBe(201);
      id = created.json().id;
      serverPort = await listenPort(ctx);
      servers.push(await startSandboxServer(ctx, id, 3000), await startSandboxServer(ctx, id, 4000));
    });
    afterAll(() => {
      for (const server of servers) server.stop();
    });

    it('a key revoked here is refused at once; one revoked behind the server’s back within 5 s', async () => {
      const here = await developerKey();
      expect(await statusWith(here.headers)).toBe(200);
      expect(await statusWith(here.headers)).toBe(200);
      const revoked = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${here.id}`,
        headers: here.headers,
      });
      expect(revoked.statusCode, revoked.body).toBe(204);
      expect(await statusWith(here.headers)).toBe(401);

      const elsewhere = await developerKey();
      expect(await statusWith(elsewhere.headers)).toBe(200);
      await ctx.store.db
        .updateTable('api_keys')
        .set({ revoked_at: isoNow() })
        .where('id', '=', elsewhere.id)
        .execute();
      await waitFor(
        async () => (await statusWith(elsewhere.headers)) === 401,
        'the key to be refused',
        7_000,
      );
    });

    it('a member demoted to viewer is refused: through the API at once, behind the server’s back within 5 s', async () => {
      const dev = await developerKey();
      expect(await statusWith(dev.headers)).toBe(200);
      const demote = () =>
        ctx.store.db
          .updateTable('members')
          .set({ role: 'viewer' })
          .where('workspace_id', '=', owner.workspaceId)
          .where('user_id', '=', dev.userId)
          .execute();
      await demote();
      await waitFor(async () => (await statusWith(dev.headers)) === 403, 'the viewer to be refused', 7_000);

      const other = await developerKey();
      expect(await statusWith(other.headers)).toBe(200);
      const changed = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/workspaces/${owner.workspaceId}/members/${other.userId}`,
        headers: owner.headers,
        payload: { role: 'viewer' },
      });
      expect(changed.statusCode, changed.body).toBe(200);
      expect(await statusWith(other.headers)).toBe(403);
    });

    it('an X-Corral-Token revoked through the API is refused at once; one revoked elsewhere within 5 s', async () => {
      const token = await mint();
      expect(await statusWith({ 'x-corral-token': token.token })).toBe(200);
      expect(await statusWith({ 'x-corral-token': token.token })).toBe(200);
      const revoked = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}/tokens/${token.id}`,
        headers: owner.headers,
      });
      expect(revoked.statusCode, revoked.body).toBe(204);
      expect(await statusWith({ 'x-corral-token': token.token })).toBe(401);

      const other = await mint();
      expect(await statusWith({ 'x-corral-token': other.token })).toBe(200);
      await ctx.store.db
        .updateTable('sandbox_tokens')
        .set({ revoked_at: isoNow() })
        .where('id', '=', other.id)
        .execute();
      await waitFor(
        async () => (await statusWith({ 'x-corral-token': other.token })) === 401,
        'the token to be refused',
        7_000,
      );
      // A token that expires while cached is refused from its expiry on.
      const short = await ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'port',
        port: 3000,
        ttlSeconds: 2,
        createdBy: owner.keyId,
      });
      expect(await statusWith({ 'x-corral-token': short.token })).toBe(200);
      await new Promise((r) => setTimeout(r, Date.parse(short.expiresAt) - Date.now() + 50));
      expect(await statusWith({ 'x-corral-token': short.token })).toBe(401);
    });

    it('a WebSocket opened with a port token (header or cookie) is cut when the token is revoked; a key’s stays', async () => {
      const token = await mint();
      const cookieToken = await mint();
      const exchange = await send(serverPort, host(), { path: `/?corral_token=${cookieToken.token}` });
      expect(exchange.status).toBe(302);
      const cookie = String(exchange.headers['set-cookie']).split(';')[0]!;
      const viaHeader = await openWs(serverPort, host(), '/echo', { 'x-corral-token': token.token });
      const viaCookie = await openWs(serverPort, host(), '/echo', { cookie });
      const viaKey = await openWs(serverPort, host(), '/echo', owner.headers);
      if (typeof viaHeader === 'number' || typeof viaCookie === 'number' || typeof viaKey === 'number') {
        throw new Error(
          `upgrade refused: ${[viaHeader, viaCookie, viaKey].filter((v) => typeof v === 'number')}`,
        );
      }
      try {
        for (const ws of [viaHeader, viaCookie, viaKey])
          expect((await echo(ws, 'hi')).data.toString()).toBe('hi');
        const closed = (ws: typeof viaHeader) => new Promise((resolve) => ws.once('close', resolve));
        const headerClosed = closed(viaHeader);
        const cookieClosed = closed(viaCookie);
        for (const t of [token, cookieToken]) {
          const revoked = await ctx.app.inject({
            method: 'DELETE',
            url: `/v1/sandboxes/${id}/tokens/${t.id}`,
            headers: owner.headers,
          });
          expect(revoked.statusCode, revoked.body).toBe(204);
        }
        await Promise.all([headerClosed, cookieClosed]);
        expect((await echo(viaKey, 'still')).data.toString()).toBe('still');
      } finally {
        for (const ws of [viaHeader, viaCookie, viaKey]) ws.terminate();
      }
    });

    it('a port made private or protected here is closed to anonymous visitors at once', async () => {
      const api = (method: 'PUT' | 'DELETE' | 'POST', path: string, payload?: object) =>
        ctx.app.inject({
          method,
          url: `/v1/sandboxes/${id}/ports/4000${path}`,
          headers: owner.headers,
          payload: payload as never,
        });
      expect((await api('PUT', '/public')).statusCode).toBe(200);
      expect(await statusWith({}, 4000)).toBe(200);
      expect(await statusWith({}, 4000)).toBe(200);
      expect((await api('DELETE', '/public')).statusCode).toBe(204);
      expect(await statusWith({}, 4000)).toBe(401);

      // Public and then protected: the password is asked for at once.
      expect((await api('PUT', '/public')).statusCode).toBe(200);
      expect(await statusWith({}, 4000)).toBe(200);
      expect((await api('DELETE', '/public')).statusCode).toBe(204);
      expect((await api('POST', '/protect', { password: 'swordfish!' })).statusCode).toBe(200);
      const anon = await send(serverPort, host(4000));
      expect(anon.status).toBe(401);
      expect(anon.headers['www-authenticate']).toMatch(/^Basic /);
      await api('DELETE', '/protect');
    });

    it('a port made private behind the server’s back is closed within 5 s', async () => {
      expect(
        (
          await ctx.app.inject({
            method: 'PUT',
            url: `/v1/sandboxes/${id}/ports/4000/public`,
            headers: owner.headers,
          })
        ).statusCode,
      ).toBe(200);
      expect(await statusWith({}, 4000)).toBe(200);
      await ctx.store.db
        .deleteFrom('sandbox_ports')
        .where('sandbox_id', '=', id)
        .where('port', '=', 4000)
        .execute();
      await waitFor(async () => (await statusWith({}, 4000)) === 401, 'the port to be private', 7_000);
    });
  },
  { runtime: true },
);
