import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeStores, expectError, memberHeaders, type StoreContext } from '../support/app.js';
import { listenPort, pattern, previewHost, send, sha256, waitFor } from './helpers.js';
import { type SandboxServer, startSandboxServer } from './sandbox-server.js';

/** Parses an error-shape answer of a real socket like `expectError` does for inject. */
function errorOf(answer: { status: number; text: string }, code: string) {
  const body = JSON.parse(answer.text);
  expect(body.error.code, answer.text).toBe(code);
  expect(typeof body.request_id).toBe('string');
  return body;
}

describeStores(
  'preview proxy: HTTP and WebSocket to a server inside the sandbox',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let serverPort: number;
    const servers: SandboxServer[] = [];
    const host = (port: number | string = 3000) => previewHost(id, port, serverPort);

    beforeAll(async () => {
      owner = await ctx.createCaller();
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: { ports: [3000, 8081] },
      });
      expect(created.statusCode, created.body).toBe(201);
      id = created.json().id;
      serverPort = await listenPort(ctx);
      servers.push(await startSandboxServer(ctx, id, 3000));
    });
    afterAll(() => {
      for (const server of servers) server.stop();
    });

    it('reaches the server inside through its preview URL with a Bearer key, without passing the key on', async () => {
      const hello = await send(serverPort, host(), {
        path: '/some/./where/../%7e?q=a+b%20c',
        headers: owner.headers,
      });
      expect(hello.status, hello.text).toBe(200);
      // The app sees the target as sent, not normalised.
      expect(hello.text).toBe('hello from 3000 GET /some/./where/../%7e?q=a+b%20c');
      expect(hello.headers['x-served-by']).toBe('perl');

      // Upper case and the server's port in Host are fine; the app sees its own Host.
      const upper = host().toUpperCase().replace('SBX_', 'sbx_');
      const seen = await send(serverPort, upper, {
        path: '/headers',
        headers: { ...owner.headers, cookie: 'app=1', 'x-forwarded-for': '6.6.6.6' },
      });
      expect(seen.status, seen.text).toBe(200);
      const head = seen.text.toLowerCase();
      expect(head).toMatch(/^get \/headers http\/1\.1\n/);
      expect(head).not.toContain('authorization');
      expect(head).not.toContain(owner.key.toLowerCase());
      expect(head).toContain('cookie: app=1');
      expect(head).toContain(`host: ${host().toLowerCase()}`);
      expect(head).toContain('x-forwarded-for: 127.0.0.1');
      expect(head).not.toContain('6.6.6.6');
      expect(head).toContain('x-forwarded-proto: http');
      expect(head).toContain(`x-forwarded-host: ${host().toLowerCase()}`);
    });

    it('streams large bodies both ways intact', async () => {
      const upload = randomBytes(24 * 1024 * 1024 + 17);
      const posted = await send(serverPort, host(), {
        method: 'POST',
        path: '/sha256',
        headers: { ...owner.headers, 'content-length': String(upload.length) },
        body: Readable.from(
          (function* () {
            for (let at = 0; at < upload.length; at += 1 << 20) yield upload.subarray(at, at + (1 << 20));
          })(),
        ),
      });
      expect(posted.status, posted.text).toBe(200);
      expect(posted.text).toBe(`${sha256(upload)} ${upload.length}`);

      const n = 32 * 1024 * 1024 + 5;
      const big = await send(serverPort, host(), { path: `/big?n=${n}`, headers: owner.headers });
      expect(big.status).toBe(200);
      expect(big.body.length).toBe(n);
      expect(sha256(big.body)).toBe(sha256(pattern(n)));
    });

    it('keeps connections into the sandbox alive between requests, and gets over one the server closed', async () => {
      const first = await send(serverPort, host(), { path: '/pid', headers: owner.headers });
      const second = await send(serverPort, host(), { path: '/pid', headers: owner.headers });
      expect(first.status).toBe(200);
      // The same child of the forking server answered: the same connection was used again.
      expect(second.text).toBe(first.text);
      // The server closes the kept connection after this answer; the next requests still work.
      expect((await send(serverPort, host(), { path: '/bye', headers: owner.headers })).text).toBe('bye');
      const third = await send(serverPort, host(), { path: '/pid', headers: owner.headers });
      expect(third.status, third.text).toBe(200);
      expect(third.text).not.toBe(first.text);
      const posted = await send(serverPort, host(), {
        method: 'POST',
        path: '/sha256',
        headers: { ...owner.headers, 'content-length': '5' },
        body: 'hello',
      });
      expect(posted.text).toBe(`${sha256(Buffer.from('hello'))} 5`);
    });

    it('serves many requests at once', async () => {
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          send(serverPort, host(), { path: `/n/${i}`, headers: owner.headers }),
        ),
      );
      answers.forEach((answer, i) => {
        expect(answer.status).toBe(200);
        expect(answer.text).toBe(`hello from 3000 GET /n/${i}`);
      });
    });

    it('cuts the connection inside when the client goes away mid-download', async () => {
      const pid = await new Promise<string>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: serverPort,
            path: `/big?n=${8 * 1024 ** 3}`,
            headers: { ...owner.headers, host: host() },
          },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve(String(res.headers['x-pid']));
            });
          },
        );
        req.on('error', () => {});
        req.on('close', () => {});
        req.once('response', (res) => res.once('error', () => {}));
        req.end();
        setTimeout(() => reject(new Error('no answer')), 20_000).unref();
      });
      expect(pid).toMatch(/^\d+$/);
      // The server's child, blocked writing 8 GiB, dies of the closed connection.
      await waitFor(async () => {
        const probe = await ctx.engine.runtime.exec(id, { command: 'kill', args: ['-0', pid] });
        return (await probe.wait()).exitCode !== 0;
      }, 'the server child to exit');
    });

    it('proxies WebSockets: text and a 2 MiB binary message echo back', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${serverPort}/echo`, {
        headers: { ...owner.headers, host: host() },
        maxPayload: 64 * 1024 * 1024,
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      });
      const next = () =>
        new Promise<{ data: Buffer; binary: boolean }>((resolve) =>
          ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })),
        );
      let reply = next();
      ws.send('hello through the preview');
      expect((await reply).data.toString('utf8')).toBe('hello through the preview');
      const blob = randomBytes(2 * 1024 * 1024);
      reply = next();
      ws.send(blob, { binary: true });
      const got = await reply;
      expect(got.binary).toBe(true);
      expect(sha256(got.data)).toBe(sha256(blob));
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.close(1000);
      expect(await closed).toBe(1000);
    });

    it('refuses WebSocket upgrades without access in the error shape', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${serverPort}/echo`, { headers: { host: host() } });
        ws.once('open', () => reject(new Error('the upgrade was accepted')));
        ws.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        ws.once('error', reject);
      });
      expect(status).toBe(401);
    });

    it('lists the listening server with its process and preview URL; /services is the same', async () => {
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/ports`,
        headers: owner.headers,
      });
      expect(listed.statusCode, listed.body).toBe(200);
      const body = listed.json();
      expect(body.next_cursor).toBeNull();
      const web = body.data.find((p: { port: number }) => p.port === 3000);
      expect(web).toMatchObject({
        port: 3000,
        protocol: 'tcp',
        process: 'perl',
        listening: true,
        public: false,
        protected: false,
        preview_url: `http://3000-${id}.localhost:${new URL(ctx.config.publicUrl).port}`,
      });
      expect(typeof web.pid).toBe('number');
      expect(web.address).toBe('0.0.0.0');
      // Declared but not listening.
      expect(body.data.find((p: { port: number }) => p.port === 8081)).toMatchObject({
        listening: false,
        process: null,
        address: null,
      });
      const alias = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/services`,
        headers: owner.headers,
      });
      expect(alias.statusCode).toBe(200);
      expect(alias.json().data.map((p: { port: number }) => p.port)).toEqual(
        body.data.map((p: { port: number }) => p.port),
      );

      const viewer = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/ports`,
        headers: await memberHeaders(ctx, owner.workspaceId, 'viewer'),
      });
      expect(viewer.statusCode).toBe(200);
      const stranger = await ctx.createCaller();
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/ports`, headers: stranger.headers }),
        'SANDBOX_NOT_FOUND',
      );
    });

    it('maps oc- to 4096 and claw- to 18789; a closed port is 502 SANDBOX_UNAVAILABLE, never a hang', async () => {
      servers.push(await startSandboxServer(ctx, id, 4096));
      const oc = await send(serverPort, previewHost(id, 'oc', serverPort), {
        path: '/agent',
        headers: owner.headers,
      });
      expect(oc.status, oc.text).toBe(200);
      expect(oc.text).toBe('hello from 4096 GET /agent');
      const claw = await send(serverPort, previewHost(id, 'claw', serverPort), { headers: owner.headers });
      expect(claw.status).toBe(502);
      expect(errorOf(claw, 'SANDBOX_UNAVAILABLE').error.details).toMatchObject({
        port: 18789,
        reason: 'not_listening',
      });
      const closed = await send(serverPort, host(3999), { headers: owner.headers });
      expect(closed.status).toBe(502);
      errorOf(closed, 'SANDBOX_UNAVAILABLE');
    });

    it('answers 404 SANDBOX_NOT_FOUND for an unknown sandbox and leaves other hosts to the API', async () => {
      const unknown = await send(serverPort, previewHost('sbx_nosuchsandboxatall00000', 3000, serverPort), {
        headers: owner.headers,
      });
      expect(unknown.status).toBe(404);
      errorOf(unknown, 'SANDBOX_NOT_FOUND');

      const api = await send(serverPort, `127.0.0.1:${serverPort}`, {
        path: `/v1/sandboxes/${id}`,
        headers: owner.headers,
      });
      expect(api.status, api.text).toBe(200);
      expect(api.json().id).toBe(id);
      // Another domain, a bad port label: not preview hosts, so the API answers.
      for (const other of [`3000-${id}.example.test`, `99999-${id}.localhost`, `x3000-${id}.localhost`]) {
        const res = await send(serverPort, other, { path: `/v1/sandboxes/${id}`, headers: owner.headers });
        expect(res.status, other).toBe(200);
      }
    });

    it('counts preview requests in /metrics', async () => {
      const metrics = await ctx.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/^corral_preview_requests_total\{kind="http",status="200"\} [1-9]/m);
      expect(metrics.body).toMatch(/^corral_preview_requests_total\{kind="http",status="502"\} [1-9]/m);
      expect(metrics.body).toMatch(/^corral_preview_requests_total\{kind="ws",status="101"\} [1-9]/m);
    });

    it('counts proxied traffic as activity', async () => {
      const old = '2020-01-01T00:00:00.000Z';
      await ctx.store.db
        .updateTable('sandboxes')
        .set({ last_activity_at: old })
        .where('id', '=', id)
        .execute();
      await new Promise((r) => setTimeout(r, 1100)); // activity is written at most once a second
      const res = await send(serverPort, host(), { headers: owner.headers });
      expect(res.status).toBe(200);
      await waitFor(async () => {
        const row = await ctx.app.sandboxes.find(id);
        return row !== null && row.last_activity_at > old;
      }, 'last_activity_at to move');
    });

    it('answers 502 SANDBOX_UNAVAILABLE (not_running) for a stopped sandbox', async () => {
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: {},
      });
      const other = created.json().id as string;
      const stopped = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${other}/stop`,
        headers: owner.headers,
      });
      expect(stopped.statusCode, stopped.body).toBe(200);
      const res = await send(serverPort, previewHost(other, 3000, serverPort), { headers: owner.headers });
      expect(res.status).toBe(502);
      expect(errorOf(res, 'SANDBOX_UNAVAILABLE').error.details).toMatchObject({
        status: 'stopped',
        reason: 'not_running',
      });
      // Without access, the state is not told.
      const anon = await send(serverPort, previewHost(other, 3000, serverPort));
      expect(anon.status).toBe(401);
    });

    it('answers 502 for a paused sandbox at once, even with a kept connection to it', async () => {
      expect((await send(serverPort, host(), { path: '/pid', headers: owner.headers })).status).toBe(200);
      const paused = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/pause`,
        headers: owner.headers,
      });
      expect(paused.statusCode, paused.body).toBe(200);
      try {
        const res = await send(serverPort, host(), { path: '/pid', headers: owner.headers });
        expect(res.status).toBe(502);
        expect(errorOf(res, 'SANDBOX_UNAVAILABLE').error.details).toMatchObject({ status: 'paused' });
      } finally {
        await ctx.app.inject({ method: 'POST', url: `/v1/sandboxes/${id}/resume`, headers: owner.headers });
      }
      expect((await send(serverPort, host(), { path: '/pid', headers: owner.headers })).status).toBe(200);
    });
  },
  { runtime: true },
);
