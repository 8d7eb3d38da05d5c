import type { ExecProcess } from '@corral/runtime';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { listenPort, previewHost, send, waitFor } from '../preview/helpers.js';
import { describeStores, expectError, memberHeaders, type StoreContext } from '../support/app.js';
import {
  exactKeys,
  expectTimeNear,
  previewUrlOf,
  RFC3339_UTC,
  SANDBOX_FIELDS,
  SANDBOX_TOKEN,
  upgrade,
} from './helpers.js';

type Headers = Record<string, string>;
type Json = Record<string, unknown>;

/**
 * The interactive-access rows of API.md (terminal, ws, ports, services, protect, tunnel,
 * observe, port-forward), the Sandbox object's ws_url / preview_urls / vnc_url and the preview
 * URL paragraph, checked field by field against a real sandbox running `python3 -m http.server`.
 */
describeStores(
  'contract: interactive access as API.md documents it',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id = '';
    let sandbox: Json;
    let serverPort: number;
    const servers: ExecProcess[] = [];
    const minted: string[] = [];
    const api = (
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      path: string,
      payload?: object,
      headers?: Headers,
    ) =>
      ctx.app.inject({
        method,
        url: `/v1/sandboxes/${id}${path}`,
        headers: headers ?? owner.headers,
        ...(payload !== undefined ? { payload } : {}),
      });
    const preview = (label: string) =>
      previewUrlOf(ctx.config.publicUrl, ctx.config.previewDomain, label, id);

    beforeAll(async () => {
      owner = await ctx.createCaller();
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: { template: 'python', type: 'opencode', ports: [8000] },
      });
      expect(res.statusCode, res.body).toBe(201);
      sandbox = res.json();
      id = sandbox.id as string;
      serverPort = await listenPort(ctx);
      // A real HTTP server on the declared port, and one on opencode's port (4096, `oc-{id}`).
      for (const port of [8000, 4096]) {
        servers.push(
          await ctx.engine.runtime.exec(id, {
            command: 'python3',
            args: ['-m', 'http.server', String(port), '--bind', '0.0.0.0'],
          }),
        );
      }
      await waitFor(async () => {
        const listening = (await ctx.engine.runtime.ports(id)).map((p) => p.port);
        return listening.includes(8000) && listening.includes(4096);
      }, 'python3 -m http.server listening on 8000 and 4096');
    });
    afterAll(async () => {
      for (const server of servers) server.kill('SIGKILL');
      if (id) await ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}`, headers: owner.headers });
    });

    it('the Sandbox object: ws_url, preview_urls {"8000": url} (oc-{id} for 4096), vnc_url null without gui', async () => {
      for (const field of SANDBOX_FIELDS) expect(sandbox, field).toHaveProperty(field);
      expect(sandbox.ws_url).toBe(`${ctx.config.publicUrl.replace(/^http/, 'ws')}/v1/sandboxes/${id}/ws`);
      expect(sandbox.preview_urls).toEqual({ '8000': preview('8000'), '4096': preview('oc') });
      expect(preview('8000')).toMatch(new RegExp(`^https?://8000-${id}\\.localhost(:\\d+)?$`));
      expect(sandbox.vnc_url).toBeNull();
      expect(sandbox.ports).toEqual(expect.arrayContaining([8000, 4096]));
      for (const field of ['created_at', 'started_at', 'expires_at', 'last_activity_at'])
        expect(sandbox[field], field).toMatch(RFC3339_UTC);
      exactKeys(sandbox.budget as Json, ['limit_usd', 'used_usd'], 'budget');
      const got = (await api('GET', '')).json();
      expect({ ws: got.ws_url, previews: got.preview_urls, vnc: got.vnc_url }).toEqual({
        ws: sandbox.ws_url,
        previews: sandbox.preview_urls,
        vnc: null,
      });
    });

    it('GET …/ports: {port, protocol, process, preview_url, protected} of the real port; /services is an alias', async () => {
      const res = await api('GET', '/ports');
      expect(res.statusCode, res.body).toBe(200);
      const body = exactKeys(
        res.json() as { data: Json[]; next_cursor: unknown },
        ['data', 'next_cursor'],
        'list',
      );
      expect(body.next_cursor).toBeNull();
      const entry = body.data.find((p) => p.port === 8000);
      expect(entry, res.body).toBeDefined();
      expect(entry).toMatchObject({
        port: 8000,
        protocol: 'tcp',
        preview_url: preview('8000'),
        protected: false,
      });
      expect(entry!.process).toMatch(/python/);
      const alias = await api('GET', '/services');
      expect(alias.statusCode, alias.body).toBe(200);
      const summary = (list: Json[]) => list.map((p) => [p.port, p.protocol, p.preview_url, p.protected]);
      expect(summary(alias.json().data)).toEqual(summary(body.data));
    });

    it('POST …/ports/{port}/protect {password} → the port protected (the password opens it); DELETE → 204', async () => {
      const password = 'correct horse battery';
      const set = await api('POST', '/ports/8000/protect', { password });
      expect(set.statusCode, set.body).toBe(200);
      expect(exactKeys(set.json(), ['port', 'preview_url', 'public', 'protected'], 'protect')).toEqual({
        port: 8000,
        preview_url: preview('8000'),
        public: false,
        protected: true,
      });
      const listed = (await api('GET', '/ports')).json().data as Json[];
      expect(listed.find((p) => p.port === 8000)?.protected).toBe(true);
      expect(set.body).not.toContain(password);
      const host = previewHost(id, 8000, serverPort);
      expect((await send(serverPort, host)).status).toBe(401);
      const basic = `Basic ${Buffer.from(`visitor:${password}`).toString('base64')}`;
      const opened = await send(serverPort, host, { headers: { authorization: basic } });
      expect(opened.status, opened.text).toBe(200);
      expect(opened.text).toContain('Directory listing');

      const removed = await api('DELETE', '/ports/8000/protect');
      expect(removed.statusCode, removed.body).toBe(204);
      expect(removed.body).toBe('');
      expect(
        ((await api('GET', '/ports')).json().data as Json[]).find((p) => p.port === 8000)?.protected,
      ).toBe(false);

      expectError(await api('POST', '/ports/8000/protect', { password: 'short' }), 'VALIDATION_ERROR');
      expectError(await api('POST', '/ports/8000/protect', {}), 'VALIDATION_ERROR');
      expectError(await api('POST', '/ports/0/protect', { password }), 'VALIDATION_ERROR');
      expectError(await api('DELETE', '/ports/70000/protect'), 'VALIDATION_ERROR');
      const viewer = await memberHeaders(ctx, owner.workspaceId, 'viewer');
      expectError(await api('POST', '/ports/8000/protect', { password }, viewer), 'FORBIDDEN');
      const stranger = await ctx.createCaller();
      expectError(
        await api('POST', '/ports/8000/protect', { password }, stranger.headers),
        'SANDBOX_NOT_FOUND',
      );
    });

    it('POST …/tunnel {kind, port?, ttl_seconds?} → 201 {token, expires_at, command or url}', async () => {
      const ssh = await api('POST', '/tunnel', { kind: 'ssh', ttl_seconds: 120 });
      expect(ssh.statusCode, ssh.body).toBe(201);
      const a = ssh.json();
      expect(a.token).toMatch(SANDBOX_TOKEN);
      expectTimeNear(a.expires_at, Date.now() + 120_000, 60_000, 'ssh expires_at');
      expect(a.command).toBe(
        `ssh -p ${ctx.config.sshPort} ${a.token}@${new URL(ctx.config.publicUrl).hostname}`,
      );
      expect(a.url).toBeUndefined();

      const shell = (await api('POST', '/tunnel', { kind: 'shell' })).json();
      expect(shell.token).toMatch(SANDBOX_TOKEN);
      expect(Date.parse(shell.expires_at)).toBeGreaterThan(Date.now());
      const url = new URL(shell.url);
      expect(url.protocol).toMatch(/^wss?:$/);
      expect(url.pathname).toBe(`/v1/sandboxes/${id}/terminal`);
      expect(url.searchParams.get('tunnel')).toBe(shell.token);
      expect(shell.command).toBeUndefined();

      const port = await api('POST', '/tunnel', { kind: 'port', port: 8000 });
      expect(port.statusCode, port.body).toBe(201);
      expect(port.json().url).toBe(`${preview('8000')}/?corral_token=${port.json().token}`);
      minted.push(a.token, shell.token, port.json().token);

      for (const bad of [
        {},
        { kind: 'ftp' },
        { kind: 'port' },
        { kind: 'ssh', port: 22 },
        { kind: 'shell', ttl_seconds: 0 },
      ])
        expectError(await api('POST', '/tunnel', bad), 'VALIDATION_ERROR');
    });

    it('POST …/observe → 201 {token, expires_at, url} (a read-only terminal URL)', async () => {
      const res = await api('POST', '/observe');
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(body.token).toMatch(SANDBOX_TOKEN);
      expect(body.expires_at).toMatch(RFC3339_UTC);
      const url = new URL(body.url);
      expect(url.pathname).toBe(`/v1/sandboxes/${id}/terminal`);
      expect(url.searchParams.get('observe')).toBe(body.token);
      minted.push(body.token);
    });

    it('POST …/port-forward {port} → 201 {url, token, expires_at}; the url opens the real port', async () => {
      const res = await api('POST', '/port-forward', { port: 8000 });
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(body.token).toMatch(SANDBOX_TOKEN);
      expect(body.url).toBe(`${preview('8000')}/?corral_token=${encodeURIComponent(body.token)}`);
      expect(Date.parse(body.expires_at)).toBeGreaterThan(Date.now());
      minted.push(body.token);
      const host = previewHost(id, 8000, serverPort);
      const swap = await send(serverPort, host, {
        path: new URL(body.url).pathname + new URL(body.url).search,
      });
      expect(swap.status, swap.text).toBe(302);
      expect(swap.headers.location).toBe('/');
      const setCookie = [swap.headers['set-cookie'] ?? []].flat()[0] ?? '';
      expect(setCookie).toMatch(/HttpOnly/i);
      const page = await send(serverPort, host, { headers: { cookie: setCookie.split(';')[0]! } });
      expect(page.status, page.text).toBe(200);
      expect(page.text).toContain('Directory listing');
      for (const bad of [{}, { port: 0 }, { port: 65_536 }, { port: 8000, kind: 'ssh' }])
        expectError(await api('POST', '/port-forward', bad), 'VALIDATION_ERROR');
    });

    it('minting needs role developer and scope sandbox:exec (403), 404 in another workspace; audited without the secret', async () => {
      const viewer = await memberHeaders(ctx, owner.workspaceId, 'viewer');
      const narrow = await memberHeaders(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      const stranger = (await ctx.createCaller()).headers;
      const mints: [string, object][] = [
        ['/tunnel', { kind: 'shell' }],
        ['/observe', {}],
        ['/port-forward', { port: 8000 }],
      ];
      for (const [path, payload] of mints) {
        expect(expectError(await api('POST', path, payload, viewer), 'FORBIDDEN').error.details).toEqual({
          required_role: 'developer',
        });
        expect(expectError(await api('POST', path, payload, narrow), 'FORBIDDEN').error.details).toEqual({
          required_scope: 'sandbox:exec',
        });
        expectError(await api('POST', path, payload, stranger), 'SANDBOX_NOT_FOUND');
      }
      const events = await api('GET', '/events?limit=500');
      expect(events.statusCode, events.body).toBe(200);
      const created = (events.json().data as { action: string; details: Json }[]).filter(
        (e) => e.action === 'sandbox.token.create',
      );
      expect(created.length).toBeGreaterThanOrEqual(minted.length);
      for (const e of created)
        expect(Object.keys(e.details)).toEqual(
          expect.arrayContaining(['kind', 'port', 'token_id', 'expires_at']),
        );
      for (const token of minted) expect(events.body).not.toContain(token);
    });

    it('terminal: ?cols=&rows= and a ?token= JWT; GET …/terminal/sessions lists it; DELETE …/sessions/{sid} → 204', async () => {
      const issued = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/token',
        payload: { api_key: owner.key },
      });
      expect(issued.statusCode, issued.body).toBe(200);
      const jwt = issued.json().token as string;
      const base = `ws://127.0.0.1:${serverPort}/v1/sandboxes/${id}`;
      const opened = await upgrade(`${base}/terminal?cols=100&rows=30&token=${encodeURIComponent(jwt)}`);
      expect('socket' in opened, JSON.stringify(opened)).toBe(true);
      const socket = (opened as { socket: WebSocket }).socket;
      try {
        const res = await api('GET', '/terminal/sessions');
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json().next_cursor).toBeNull();
        const [session] = res.json().data as Json[];
        exactKeys(session!, ['id', 'created_at', 'clients', 'cols', 'rows', 'pid'], 'session');
        expect(session).toMatchObject({ cols: 100, rows: 30, clients: 1 });
        expect(session!.created_at).toMatch(RFC3339_UTC);
        const killed = await api('DELETE', `/terminal/sessions/${session!.id}`);
        expect(killed.statusCode, killed.body).toBe(204);
        expectError(await api('DELETE', `/terminal/sessions/${session!.id}`), 'SESSION_NOT_FOUND');
      } finally {
        socket.terminate();
      }
      const refused = await upgrade(`${base}/terminal?token=not-a-jwt`);
      expectError(refused as never, 'UNAUTHORIZED');
      expectError(
        (await upgrade(`${base}/terminal?cols=0&token=${encodeURIComponent(jwt)}`)) as never,
        'VALIDATION_ERROR',
      );
      const plain = await api('GET', '/terminal');
      expect(plain.statusCode, plain.body).toBe(400);
      expectError(plain);
    });

    it('/ws: a ?token= JWT opens the multiplexed socket (subprotocol corral.mux.v1); a bad one is 401 before the upgrade', async () => {
      const jwt = (
        await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: owner.key } })
      ).json().token as string;
      const url = `ws://127.0.0.1:${serverPort}/v1/sandboxes/${id}/ws`;
      const opened = await upgrade(`${url}?token=${encodeURIComponent(jwt)}`, ['corral.mux.v1']);
      expect('socket' in opened, JSON.stringify(opened)).toBe(true);
      const socket = (opened as { socket: WebSocket }).socket;
      expect(socket.protocol).toBe('corral.mux.v1');
      socket.terminate();
      expectError((await upgrade(`${url}?token=nope`, ['corral.mux.v1'])) as never, 'UNAUTHORIZED');
    });

    it('preview hosts: {port}-{id}.{preview_domain} and oc-{id} reach the ports inside (with a key)', async () => {
      for (const label of ['8000', 'oc']) {
        const page = await send(serverPort, previewHost(id, label, serverPort), { headers: owner.headers });
        expect(page.status, `${label}: ${page.text}`).toBe(200);
        expect(page.text).toContain('Directory listing');
      }
      const other = await send(serverPort, previewHost(id, 'claw', serverPort), { headers: owner.headers });
      expectError(
        { statusCode: other.status, headers: other.headers, body: other.text },
        'SANDBOX_UNAVAILABLE',
      );
    });

    it('a preview of a port nothing listens on answers 502 SANDBOX_UNAVAILABLE in the error shape', async () => {
      const closed = await send(serverPort, previewHost(id, 8001, serverPort), { headers: owner.headers });
      expect(closed.status, closed.text).toBe(502);
      expectError(
        { statusCode: closed.status, headers: closed.headers, body: closed.text },
        'SANDBOX_UNAVAILABLE',
      );
    });
  },
  { runtime: true },
);
