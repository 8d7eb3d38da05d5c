import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStores, memberHeaders, type StoreContext } from '../support/app.js';
import { type Answer, echo, listenPort, openWs, previewHost, send, waitFor } from './helpers.js';
import { type SandboxServer, startSandboxServer } from './sandbox-server.js';

function codeOf(answer: Answer): string {
  return (JSON.parse(answer.text) as { error: { code: string } }).error.code;
}

/** The `corral_preview=…` pair of a Set-Cookie answer. */
function cookieOf(answer: Answer): string {
  const header = answer.headers['set-cookie'];
  const first = Array.isArray(header) ? header[0] : header;
  expect(first, `no Set-Cookie in ${answer.status}`).toBeDefined();
  return first!.split(';')[0]!;
}

describeStores(
  'preview proxy: who gets in (keys, tokens, cookies, public and protected ports)',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let otherId: string;
    let serverPort: number;
    const servers: SandboxServer[] = [];
    const host = (port: number | string = 3000, sandbox = id) => previewHost(sandbox, port, serverPort);
    const mint = (port: number, sandbox = id, nowMs = Date.now(), ttlSeconds = 600) =>
      ctx.app.sandboxTokens.mint(
        {
          sandboxId: sandbox,
          workspaceId: owner.workspaceId,
          kind: 'port',
          port,
          ttlSeconds,
          createdBy: owner.keyId,
        },
        nowMs,
      );
    const api = (method: 'POST' | 'PUT' | 'DELETE', path: string, headers: object, payload?: object) =>
      ctx.app.inject({
        method,
        url: `/v1/sandboxes/${id}${path}`,
        headers: headers as never,
        payload: payload as never,
      });

    beforeAll(async () => {
      owner = await ctx.createCaller();
      const create = async () => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/sandboxes',
          headers: owner.headers,
          payload: {},
        });
        expect(res.statusCode, res.body).toBe(201);
        return res.json().id as string;
      };
      id = await create();
      otherId = await create();
      serverPort = await listenPort(ctx);
      servers.push(await startSandboxServer(ctx, id, 3000), await startSandboxServer(ctx, id, 4096));
      servers.push(await startSandboxServer(ctx, otherId, 3000));
    });
    afterAll(() => {
      for (const server of servers) server.stop();
    });

    it('is private by default: no credential 401 (JSON, or an HTML page for browsers)', async () => {
      const anon = await send(serverPort, host());
      expect(anon.status).toBe(401);
      expect(codeOf(anon)).toBe('UNAUTHORIZED');
      expect(anon.headers['www-authenticate']).toBeUndefined();
      const browser = await send(serverPort, host(), { headers: { accept: 'text/html,*/*' } });
      expect(browser.status).toBe(401);
      expect(browser.headers['content-type']).toMatch(/^text\/html/);
      expect(browser.text).toContain('corral_token');
      expect(browser.text).not.toContain('hello from');
    });

    it('takes keys and JWTs of developers with sandbox:exec; refuses other workspaces (404), viewers and narrow scopes (403), bad keys (401)', async () => {
      const dev = await memberHeaders(ctx, owner.workspaceId, 'developer', ['sandbox:exec']);
      expect((await send(serverPort, host(), { headers: dev })).status).toBe(200);

      const stranger = await ctx.createCaller();
      const foreign = await send(serverPort, host(), { headers: stranger.headers });
      expect(foreign.status).toBe(404);
      expect(codeOf(foreign)).toBe('SANDBOX_NOT_FOUND');

      const viewer = await send(serverPort, host(), {
        headers: await memberHeaders(ctx, owner.workspaceId, 'viewer'),
      });
      expect(viewer.status).toBe(403);
      expect(JSON.parse(viewer.text).error.details).toEqual({ required_role: 'developer' });
      const narrow = await memberHeaders(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      const scoped = await send(serverPort, host(), { headers: narrow });
      expect(scoped.status).toBe(403);
      expect(JSON.parse(scoped.text).error.details).toEqual({ required_scope: 'sandbox:exec' });

      const bogus = await send(serverPort, host(), {
        headers: { authorization: `Bearer crl_sk_${'x'.repeat(48)}` },
      });
      expect(bogus.status).toBe(401);
      // A bearer token that is not Corral's belongs to the app: it opens nothing here.
      expect(
        (await send(serverPort, host(), { headers: { authorization: 'Bearer app-token' } })).status,
      ).toBe(401);

      const issued = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/token',
        payload: { api_key: owner.key },
      });
      expect(issued.statusCode, issued.body).toBe(200);
      const jwt = issued.json().token as string;
      const viaJwt = await send(serverPort, host(), {
        path: '/headers',
        headers: { authorization: `Bearer ${jwt}` },
      });
      expect(viaJwt.status).toBe(200);
      expect(viaJwt.text.toLowerCase()).not.toContain('authorization');
    });

    it('exchanges ?corral_token= for a host-only cookie (302 without the parameter); the cookie and X-Corral-Token work', async () => {
      const token = await mint(3000);
      const exchanged = await send(serverPort, host(), { path: `/page?x=1&corral_token=${token.token}&y=2` });
      expect(exchanged.status).toBe(302);
      expect(exchanged.headers.location).toBe('/page?x=1&y=2');
      const setCookie = String(exchanged.headers['set-cookie']);
      expect(setCookie).toMatch(/^corral_preview=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      expect(setCookie).not.toContain('Domain');
      expect(setCookie).not.toContain(token.token);
      const cookie = cookieOf(exchanged);

      const page = await send(serverPort, host(), {
        path: '/headers',
        headers: { cookie: `a=b; ${cookie}; c=d` },
      });
      expect(page.status, page.text).toBe(200);
      const head = page.text.toLowerCase();
      expect(head).toContain('cookie: a=b; c=d');
      expect(head).not.toContain('corral_preview');

      // The cookie opens only its sandbox and port.
      expect((await send(serverPort, host(4096), { headers: { cookie } })).status).toBe(401);
      expect((await send(serverPort, host(3000, otherId), { headers: { cookie } })).status).toBe(401);
      const tampered = cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      expect((await send(serverPort, host(), { headers: { cookie: tampered } })).status).toBe(401);

      // The header form, for API clients: no cookie, and the token is not forwarded.
      const header = await send(serverPort, host(), {
        path: '/headers',
        headers: { 'x-corral-token': token.token },
      });
      expect(header.status).toBe(200);
      expect(header.headers['set-cookie']).toBeUndefined();
      expect(header.text).not.toContain(token.token);
      // On a WebSocket-less POST the parameter is accepted as is (and stripped).
      const post = await send(serverPort, host(), {
        method: 'POST',
        path: `/form?corral_token=${token.token}`,
      });
      expect(post.status).toBe(200);
      expect(post.text).toBe('hello from 3000 POST /form');
    });

    it('opens WebSockets with the cookie (what a page’s scripts send) or ?corral_token=, and refuses bad ones', async () => {
      const token = await mint(3000);
      const cookie = cookieOf(await send(serverPort, host(), { path: `/?corral_token=${token.token}` }));
      const viaCookie = await openWs(serverPort, host(), '/socket', { cookie });
      if (typeof viaCookie === 'number') throw new Error(`HTTP ${viaCookie}`);
      expect((await echo(viaCookie, 'with a cookie')).data.toString()).toBe('with a cookie');
      viaCookie.close();
      const viaParam = await openWs(serverPort, host(), `/socket?corral_token=${token.token}`);
      if (typeof viaParam === 'number') throw new Error(`HTTP ${viaParam}`);
      expect((await echo(viaParam, 'with the token')).data.toString()).toBe('with the token');
      viaParam.close();
      expect(await openWs(serverPort, host(), '/socket?corral_token=crl_tk_nope')).toBe(401);
      expect(await openWs(serverPort, host(4096), '/socket', { cookie })).toBe(401);
      const stranger = await ctx.createCaller();
      expect(await openWs(serverPort, host(), '/socket', stranger.headers)).toBe(404);
    });

    it('refuses expired, revoked, other-port and other-sandbox tokens; revoking ends the cookie too', async () => {
      const expired = await mint(3000, id, Date.now() - 3600_000, 60);
      const otherPort = await mint(4096);
      const otherSandbox = await mint(3000, otherId);
      for (const bad of [expired.token, otherPort.token, otherSandbox.token, 'crl_tk_nope']) {
        expect((await send(serverPort, host(), { path: `/?corral_token=${bad}` })).status).toBe(401);
        expect((await send(serverPort, host(), { headers: { 'x-corral-token': bad } })).status).toBe(401);
      }
      expect(
        (await send(serverPort, host(4096), { headers: { 'x-corral-token': otherPort.token } })).status,
      ).toBe(200);

      const live = await mint(3000);
      const cookie = cookieOf(await send(serverPort, host(), { path: `/?corral_token=${live.token}` }));
      expect((await send(serverPort, host(), { headers: { cookie } })).status).toBe(200);
      expect(await ctx.app.sandboxTokens.revoke(id, live.id)).toBe(true);
      expect((await send(serverPort, host(), { headers: { 'x-corral-token': live.token } })).status).toBe(
        401,
      );
      await waitFor(
        async () => (await send(serverPort, host(), { headers: { cookie } })).status === 401,
        'the revoked token’s cookie to stop working',
      );
    });

    it('opens a public port to anyone; developers toggle it, viewers cannot', async () => {
      const viewer = await memberHeaders(ctx, owner.workspaceId, 'viewer');
      expect((await api('PUT', '/ports/3000/public', viewer)).statusCode).toBe(403);
      const stranger = await ctx.createCaller();
      expect((await api('PUT', '/ports/3000/public', stranger.headers)).statusCode).toBe(404);
      expect((await api('PUT', '/ports/0/public', owner.headers)).statusCode).toBe(400);

      const made = await api('PUT', '/ports/3000/public', owner.headers);
      expect(made.statusCode, made.body).toBe(200);
      expect(made.json()).toMatchObject({ port: 3000, public: true, protected: false });
      const anon = await send(serverPort, host(), {
        path: '/headers',
        headers: { authorization: 'Bearer app-token' },
      });
      expect(anon.status).toBe(200);
      // The app's own credential passes through on a public port.
      expect(anon.text).toContain('Bearer app-token');
      // Only that port.
      expect((await send(serverPort, host(4096))).status).toBe(401);
      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/ports`,
        headers: owner.headers,
      });
      expect(listed.json().data.find((p: { port: number }) => p.port === 3000).public).toBe(true);

      expect((await api('DELETE', '/ports/3000/public', owner.headers)).statusCode).toBe(204);
      expect((await send(serverPort, host())).status).toBe(401);
    });

    it('protects a port with a password: page, Basic auth, form → cookie; wrong ones 401 then 429; removal ends it', async () => {
      const viewer = await memberHeaders(ctx, owner.workspaceId, 'viewer');
      expect(
        (await api('POST', '/ports/3000/protect', viewer, { password: 'correct horse' })).statusCode,
      ).toBe(403);
      expect(
        (await api('POST', '/ports/3000/protect', owner.headers, { password: 'short' })).statusCode,
      ).toBe(400);
      const set = await api('POST', '/ports/3000/protect', owner.headers, { password: 'correct horse' });
      expect(set.statusCode, set.body).toBe(200);
      expect(set.json()).toMatchObject({ port: 3000, public: false, protected: true });

      const page = await send(serverPort, host(), { path: '/app?tab=2', headers: { accept: 'text/html' } });
      expect(page.status).toBe(401);
      expect(page.headers['www-authenticate']).toBeUndefined();
      expect(page.text).toContain('action="/__corral/auth"');
      expect(page.text).toContain('name="next" value="/app?tab=2"');
      const json = await send(serverPort, host());
      expect(json.status).toBe(401);
      expect(json.headers['www-authenticate']).toMatch(/^Basic /);

      const basic = (password: string) => ({
        authorization: `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}`,
      });
      const viaBasic = await send(serverPort, host(), { path: '/headers', headers: basic('correct horse') });
      expect(viaBasic.status).toBe(200);
      expect(viaBasic.text.toLowerCase()).not.toContain('authorization');
      expect((await send(serverPort, host(), { headers: basic('wrong horse') })).status).toBe(401);
      // Members still get in with their key.
      expect((await send(serverPort, host(), { headers: owner.headers })).status).toBe(200);

      const form = (password: string, next = '/app?tab=2') =>
        send(serverPort, host(), {
          method: 'POST',
          path: '/__corral/auth',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
          body: new URLSearchParams({ password, next }).toString(),
        });
      const wrong = await form('nope nope nope');
      expect(wrong.status).toBe(401);
      expect(wrong.text).toContain('Wrong password');
      const right = await form('correct horse');
      expect(right.status).toBe(303);
      expect(right.headers.location).toBe('/app?tab=2');
      const cookie = cookieOf(right);
      expect(cookie).toMatch(/^corral_preview=pw-/);
      expect((await send(serverPort, host(), { headers: { cookie } })).status).toBe(200);
      // Offsite `next` is refused: back to /.
      expect((await form('correct horse', '//evil.example/')).headers.location).toBe('/');

      // A new password signs out the old one's cookie.
      expect(
        (await api('POST', '/ports/3000/protect', owner.headers, { password: 'battery staple' })).statusCode,
      ).toBe(200);
      expect((await send(serverPort, host(), { headers: { cookie } })).status).toBe(401);
      expect((await send(serverPort, host(), { headers: basic('battery staple') })).status).toBe(200);

      expect((await api('DELETE', '/ports/3000/protect', owner.headers)).statusCode).toBe(204);
      expect((await send(serverPort, host(), { headers: basic('battery staple') })).status).toBe(401);
      expect((await send(serverPort, host(), { headers: { accept: 'text/html' } })).text).not.toContain(
        '__corral/auth',
      );
    });

    it('throttles wrong passwords: 5 a minute per sandbox, port and client, then 429 with Retry-After', async () => {
      expect(
        (await api('POST', '/ports/4096/protect', owner.headers, { password: 'open sesame' })).statusCode,
      ).toBe(200);
      const basic = (password: string) => ({
        authorization: `Basic ${Buffer.from(`u:${password}`).toString('base64')}`,
      });
      for (let i = 0; i < 5; i++) {
        expect((await send(serverPort, host(4096), { headers: basic(`wrong ${i}`) })).status).toBe(401);
      }
      const blocked = await send(serverPort, host(4096), { headers: basic('open sesame') });
      expect(blocked.status).toBe(429);
      expect(codeOf(blocked)).toBe('RATE_LIMITED');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      const page = await send(serverPort, host(4096), {
        method: 'POST',
        path: '/__corral/auth',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        body: 'password=open+sesame',
      });
      expect(page.status).toBe(429);
      expect(page.text).toContain('Too many wrong passwords');
      // Other ports and members are not affected.
      expect((await send(serverPort, host(4096), { headers: owner.headers })).status).toBe(200);
      await api('DELETE', '/ports/4096/protect', owner.headers);
    });

    it('records port settings in the audit events, never the password', async () => {
      const res = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/events?limit=500`,
        headers: owner.headers,
      });
      expect(res.statusCode, res.body).toBe(200);
      const actions = (res.json().data as { action: string }[]).map((e) => e.action);
      expect(actions).toEqual(
        expect.arrayContaining([
          'sandbox.port.protect',
          'sandbox.port.unprotect',
          'sandbox.port.public',
          'sandbox.port.private',
        ]),
      );
      expect(res.body).not.toContain('correct horse');
      expect(res.body).not.toContain('battery staple');
    });

    it('documents the port routes in OpenAPI', async () => {
      const doc = (await ctx.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
      expect(doc.paths['/v1/sandboxes/{id}/ports'].get).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/services'].get).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/ports/{port}/protect'].post).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/ports/{port}/protect'].delete).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/ports/{port}/public'].put).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/ports/{port}/public'].delete).toBeDefined();
    });
  },
  { runtime: true },
);
