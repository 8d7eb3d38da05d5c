import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { muxOf } from '../../src/services/mux/index.js';
import { registerAccount } from '../auth/helpers.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, memberOf, refusal, wsBase } from '../terminal/helpers.js';
import { MuxClient, T } from './client.js';

const MUX = ['corral.mux.v1'];

/** Tries to open `url` offering `protocols`; resolves with the refusal's HTTP answer. */
function refused(url: string, headers: Record<string, string>, protocols: string[]) {
  return new Promise<{
    statusCode: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }>((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers });
    socket.once('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        res.socket?.destroy();
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    socket.once('error', reject);
  });
}

describeStores(
  'mux: credentials and permissions',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const url = (sandbox: string, query = '') => `${base}/v1/sandboxes/${sandbox}/ws${query}`;
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
    });
    afterAll(async () => {
      await ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}`, headers: owner.headers });
    });

    it('refuses before upgrading, in the error shape: 401, 403 viewer, 403 scope, 404 other workspace, 400 without upgrade', async () => {
      expectError(await refused(url(id), {}, MUX), 'UNAUTHORIZED');
      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      expect(expectError(await refused(url(id), viewer, MUX), 'FORBIDDEN').error.details).toEqual({
        required_role: 'developer',
      });
      const readOnly = await memberOf(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      expect(expectError(await refused(url(id), readOnly, MUX), 'FORBIDDEN').error.details).toEqual({
        required_scope: 'sandbox:exec',
      });
      const stranger = await ctx.createCaller();
      expectError(await refused(url(id), stranger.headers, MUX), 'SANDBOX_NOT_FOUND');
      expectError(await refused(url('sbx_nosuchsandbox'), owner.headers, MUX), 'SANDBOX_NOT_FOUND');
      expectError(await refused(url(id, '?token=garbage.not.ajwt'), {}, MUX), 'UNAUTHORIZED');
      expectError(await refused(url(id, `?token=${owner.key}`), {}, MUX), 'UNAUTHORIZED');
      const plain = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/ws`,
        headers: owner.headers,
      });
      expectError(plain, 'BAD_REQUEST');
    });

    it('needs the corral.mux.v1 subprotocol, and picks it among others', async () => {
      const none = expectError(await refusal(url(id), owner.headers), 'BAD_REQUEST');
      expect(none.error.details).toMatchObject({ supported: ['corral.mux.v1'] });
      expectError(await refused(url(id), owner.headers, ['corral.mux.v2']), 'BAD_REQUEST');
      const socket = new WebSocket(url(id), ['corral.mux.v9', 'corral.mux.v1'], { headers: owner.headers });
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      expect(socket.protocol).toBe('corral.mux.v1');
      socket.close();
    });

    it('accepts a ?token= JWT, refuses a cross-origin session cookie, and records sandbox.ws.open', async () => {
      const issued = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/token',
        payload: { api_key: owner.key },
      });
      expect(issued.statusCode, issued.body).toBe(200);
      const jwt = issued.json().token as string;
      const mux = await MuxClient.connect(url(id, `?token=${encodeURIComponent(jwt)}`));
      const ch = await mux.open({ type: 'exec', command: 'echo', args: ['via-jwt'] });
      expect((await mux.closedChannel(ch.id)).text).toBe('via-jwt\n');
      expect(mux.log(ch.id).json(T.EXIT)).toMatchObject({ exit_code: 0 });
      await mux.close();

      const account = await registerAccount(ctx.app, 'mux');
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: { cookie: account.cookie, 'x-csrf-token': account.csrf },
        payload: {},
      });
      expect(res.statusCode, res.body).toBe(201);
      const own = res.json().id as string;
      try {
        const evil = await refused(url(own), { cookie: account.cookie, origin: 'https://evil.example' }, MUX);
        expectError(evil, 'FORBIDDEN');
        const same = await MuxClient.connect(url(own), {
          cookie: account.cookie,
          origin: base.replace('ws://', 'http://'),
        });
        await same.close();
      } finally {
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/sandboxes/${own}`,
          headers: { cookie: account.cookie, 'x-csrf-token': account.csrf },
        });
      }

      const events = await ctx.store.db
        .selectFrom('audit_events')
        .select(['action'])
        .where('target_id', '=', id)
        .where('action', '=', 'sandbox.ws.open')
        .execute();
      expect(events.length).toBeGreaterThanOrEqual(2);
    });

    it('allows 32 connections per sandbox; the 33rd is a 409 before the upgrade', async () => {
      const open = await Promise.all(
        Array.from({ length: 32 }, () => MuxClient.connect(url(id), owner.headers)),
      );
      try {
        const refusal33 = expectError(await refused(url(id), owner.headers, MUX), 'CONFLICT');
        expect(refusal33.error.details).toMatchObject({ max: 32 });
      } finally {
        await Promise.all(open.map((c) => c.close()));
      }
      const deadline = Date.now() + 20_000;
      while (muxOf(ctx.app).countFor(id) > 0) {
        if (Date.now() > deadline) throw new Error('connections were not released');
        await new Promise((r) => setTimeout(r, 20));
      }
      const again = await MuxClient.connect(url(id), owner.headers);
      await again.close();
    });

    it("counts the connection's traffic as the sandbox's activity", async () => {
      const mux = await MuxClient.connect(url(id), owner.headers);
      await ctx.store.db
        .updateTable('sandboxes')
        .set({ last_activity_at: '2000-01-01T00:00:00.000Z' })
        .where('id', '=', id)
        .execute();
      // Output keeps coming for longer than the activity write's one-second throttle.
      const ch = await mux.open({
        type: 'exec',
        command: 'sh',
        args: ['-c', 'for i in 1 2 3; do echo $i; sleep 0.6; done'],
      });
      await mux.closedChannel(ch.id);
      const row = await ctx.store.db
        .selectFrom('sandboxes')
        .select('last_activity_at')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(new Date(row.last_activity_at as string | Date).getTime()).toBeGreaterThan(
        Date.parse('2001-01-01'),
      );
      await mux.close();
    });

    it('ends the channels of a sandbox that stops, then refuses it (409)', async () => {
      const mux = await MuxClient.connect(url(id), owner.headers);
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      expect(ch.ok).toBe(true);
      const stop = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/stop`,
        headers: owner.headers,
      });
      expect(stop.statusCode, stop.body).toBeLessThan(300);
      // The process died with its sandbox: the channel ends.
      const log = await mux.closedChannel(ch.id, 60_000);
      expect(log.has(T.EXIT) || log.has(T.ERROR)).toBe(true);
      await mux.close();
      expectError(await refused(url(id), owner.headers, MUX), 'INVALID_STATE');
    });
  },
  { runtime: true },
);
