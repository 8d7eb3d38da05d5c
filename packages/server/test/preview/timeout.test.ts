import { afterAll, beforeAll, expect, it } from 'vitest';
import { previewProxyOf } from '../../src/plugins/preview.js';
import { runSandboxJobsOnce } from '../../src/plugins/sandbox-jobs.js';
import { describeStores, type StoreContext } from '../support/app.js';
import { echo, listenPort, openWs, previewHost, send } from './helpers.js';
import { type SandboxServer, startDetachedSandboxServer, startSandboxServer } from './sandbox-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeStores(
  'preview proxy: a response-head timeout, and open connections as activity',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let serverPort: number;
    const servers: SandboxServer[] = [];
    const host = (port = 3000, sandbox = id) => previewHost(sandbox, port, serverPort);
    const create = async (payload: object) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: payload as never,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json().id as string;
    };
    const statusOf = async (sandbox: string) => (await ctx.app.sandboxes.find(sandbox))?.status;

    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await create({});
      serverPort = await listenPort(ctx);
      servers.push(await startSandboxServer(ctx, id, 3000));
      // A short limit for this suite (the default is 300 s).
      previewProxyOf(ctx.app)!.headersTimeoutMs = 1000;
    });
    afterAll(() => {
      for (const server of servers) server.stop();
    });

    it('answers 502 SANDBOX_UNAVAILABLE {reason: timeout} when the app accepts and never answers', async () => {
      const res = await send(serverPort, host(), { path: '/hang', headers: owner.headers });
      expect(res.status).toBe(502);
      const body = JSON.parse(res.text);
      expect(body.error.code).toBe('SANDBOX_UNAVAILABLE');
      expect(body.error.details).toMatchObject({ id, port: 3000, reason: 'timeout', timeout_seconds: 1 });
      expect(typeof body.request_id).toBe('string');
      // The same for a request with a body, and for a WebSocket handshake never answered.
      const post = await send(serverPort, host(), {
        method: 'POST',
        path: '/hang',
        headers: owner.headers,
        body: 'x'.repeat(100_000),
      });
      expect(post.status).toBe(502);
      expect(JSON.parse(post.text).error.details.reason).toBe('timeout');
      expect(await openWs(serverPort, host(), '/hang', owner.headers)).toBe(502);
      // The port still serves other requests.
      expect((await send(serverPort, host(), { headers: owner.headers })).text).toBe('hello from 3000 GET /');
    });

    it('never cuts a streamed answer slower than the limit, nor a quiet WebSocket', async () => {
      const drip = await send(serverPort, host(), { path: '/drip?n=4&ms=600', headers: owner.headers });
      expect(drip.status).toBe(200);
      expect(drip.text).toBe('chunk 1\nchunk 2\nchunk 3\nchunk 4\n');

      const ws = await openWs(serverPort, host(), '/socket', owner.headers);
      if (typeof ws === 'number') throw new Error(`HTTP ${ws}`);
      try {
        expect((await echo(ws, 'first')).data.toString()).toBe('first');
        await sleep(2500);
        expect((await echo(ws, 'after a quiet while')).data.toString()).toBe('after a quiet while');
      } finally {
        ws.close();
      }
    });

    it('keeps a sandbox with an open but quiet WebSocket from idling; once closed it idles', async () => {
      const idle = await create({ idle_timeout_seconds: 3 });
      await startDetachedSandboxServer(ctx, idle, 3000);
      // Nothing the runtime tracks runs in it: only activity keeps it up.
      await expect.poll(() => ctx.engine.runtime.processes(idle)).toEqual([]);
      const ws = await openWs(serverPort, host(3000, idle), '/socket', owner.headers);
      if (typeof ws === 'number') throw new Error(`HTTP ${ws}`);
      try {
        expect((await echo(ws, 'hello')).data.toString()).toBe('hello');
        // Longer than the idle timeout with no traffic at all.
        await sleep(4500);
        const report = await runSandboxJobsOnce(ctx.app);
        expect(report.idlePaused).toBe(0);
        expect(await statusOf(idle)).toBe('running');
        expect((await echo(ws, 'still here')).data.toString()).toBe('still here');
      } finally {
        ws.close();
      }
      await sleep(4000);
      await runSandboxJobsOnce(ctx.app);
      expect(await statusOf(idle)).toBe('paused');
    });
  },
  // The jobs timer stays out of the way: the test runs the idle job itself.
  { runtime: true, config: { jobIntervalSeconds: 3600 } },
);
