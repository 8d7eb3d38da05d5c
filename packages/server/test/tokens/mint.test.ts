import { beforeAll, expect, it } from 'vitest';
import { hashToken } from '../../src/services/sandbox-tokens.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, memberOf } from '../terminal/helpers.js';

const PUBLIC_URL = 'https://corral.example.test:8443';

describeStores(
  'tokens: minting tunnel, port-forward and observe tokens',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    const post = (path: string, headers: { authorization: string }, payload?: object) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${path}`,
        headers,
        ...(payload ? { payload } : {}),
      });
    /** The audit event recording the mint of `tokenId`. */
    const mintEvent = async (sandbox: string, tokenId: string) => {
      const events = (await ctx.app.audit.listForTarget(sandbox, { limit: 500 })).data;
      return events.find((e) => e.action === 'sandbox.token.create' && e.details.token_id === tokenId);
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
    });

    it('tunnel ssh: 201 with the ssh command for the gateway, the token hashed, an audit event without it', async () => {
      const res = await post('tunnel', owner.headers, { kind: 'ssh' });
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['command', 'expires_at', 'id', 'kind', 'token']);
      expect(body.kind).toBe('ssh');
      expect(body.token).toMatch(/^crl_tk_[0-9A-Za-z]{40}$/);
      expect(body.command).toBe(`ssh -p 2022 ${body.token}@corral.example.test`);
      const lifetime = Date.parse(body.expires_at) - Date.now();
      expect(lifetime).toBeGreaterThan(3500_000);
      expect(lifetime).toBeLessThanOrEqual(3600_000);

      const row = await ctx.store.db
        .selectFrom('sandbox_tokens')
        .selectAll()
        .where('id', '=', body.id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ sandbox_id: id, kind: 'ssh', port: null, created_by: owner.keyId });
      expect(row.token_hash).toBe(hashToken(body.token));

      const event = await mintEvent(id, body.id);
      expect(event).toMatchObject({ actor_type: 'key', actor_id: owner.keyId });
      expect(event!.details).toMatchObject({
        token_id: body.id,
        kind: 'ssh',
        port: null,
        expires_at: body.expires_at,
      });
      expect(JSON.stringify(event)).not.toContain(body.token);
    });

    it('tunnel shell: the terminal URL carrying the token; tunnel port: the preview URL with corral_token', async () => {
      const shell = await post('tunnel', owner.headers, { kind: 'shell', ttl_seconds: 120 });
      expect(shell.statusCode, shell.body).toBe(201);
      const s = shell.json();
      expect(Object.keys(s).sort()).toEqual(['expires_at', 'id', 'kind', 'token', 'url']);
      expect(s.url).toBe(`wss://corral.example.test:8443/v1/sandboxes/${id}/terminal?tunnel=${s.token}`);
      expect(Date.parse(s.expires_at) - Date.now()).toBeLessThanOrEqual(120_000);
      expect((await mintEvent(id, s.id))?.details).toMatchObject({ kind: 'shell' });

      const port = await post('tunnel', owner.headers, { kind: 'port', port: 3000 });
      expect(port.statusCode, port.body).toBe(201);
      const p = port.json();
      expect(p.kind).toBe('port');
      expect(p.url).toBe(`https://3000-${id}.localhost:8443/?corral_token=${p.token}`);
      const event = await mintEvent(id, p.id);
      expect(event?.details).toMatchObject({ kind: 'port', port: 3000 });
      expect(JSON.stringify(event)).not.toContain(p.token);
    });

    it('port-forward: 201 {id, url, token, expires_at}, a port token for that port', async () => {
      const res = await post('port-forward', owner.headers, { port: 8080, ttl_seconds: 86400 });
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['expires_at', 'id', 'token', 'url']);
      expect(body.url).toBe(`https://8080-${id}.localhost:8443/?corral_token=${body.token}`);
      expect(Date.parse(body.expires_at) - Date.now()).toBeGreaterThan(86_000_000);
      expect(
        await ctx.app.sandboxTokens.verify(body.token, { kind: 'port', sandboxId: id, port: 8080 }),
      ).toMatchObject({ id: body.id });
      expect(
        await ctx.app.sandboxTokens.verify(body.token, { kind: 'port', sandboxId: id, port: 8081 }),
      ).toBeNull();
      expect((await mintEvent(id, body.id))?.details).toMatchObject({ kind: 'port', port: 8080 });
    });

    it('observe: 201 {id, token, expires_at, url}, an observe token in the table', async () => {
      const res = await post('observe', owner.headers);
      expect(res.statusCode, res.body).toBe(201);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['expires_at', 'id', 'token', 'url']);
      expect(body.url).toBe(
        `wss://corral.example.test:8443/v1/sandboxes/${id}/terminal?observe=${body.token}`,
      );
      const event = await mintEvent(id, body.id);
      expect(event?.details).toMatchObject({ kind: 'observe', session_id: null });
      expect(JSON.stringify(event)).not.toContain(body.token);
    });

    it('validates: ttl 1..86400, port 1..65535, port required with kind port and refused otherwise', async () => {
      const bad: [string, object][] = [
        ['tunnel', { kind: 'shell', ttl_seconds: 0 }],
        ['tunnel', { kind: 'shell', ttl_seconds: 86401 }],
        ['tunnel', { kind: 'port' }],
        ['tunnel', { kind: 'port', port: 0 }],
        ['tunnel', { kind: 'port', port: 65536 }],
        ['tunnel', { kind: 'ssh', port: 22 }],
        ['tunnel', { kind: 'vnc' }],
        ['tunnel', {}],
        ['tunnel', { kind: 'shell', extra: 1 }],
        ['port-forward', {}],
        ['port-forward', { port: 70000 }],
        ['port-forward', { port: 3000, ttl_seconds: 86401 }],
        ['observe', { ttl_seconds: 86401 }],
      ];
      for (const [path, payload] of bad) {
        const res = await post(path, owner.headers, payload);
        expect(res.statusCode, `${path} ${JSON.stringify(payload)}: ${res.body}`).toBe(400);
        expectError(res, 'VALIDATION_ERROR');
      }
      const kindPort = expectError(await post('tunnel', owner.headers, { kind: 'port' }), 'VALIDATION_ERROR');
      expect(kindPort.error.details).toEqual({
        fields: [{ path: '/port', message: 'is required with kind port' }],
      });
    });

    it('guards every mint route: viewer 403, scope sandbox:read 403, another workspace 404, no caller 401', async () => {
      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      const readOnly = await memberOf(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      const stranger = await ctx.createCaller();
      const routes: [string, object][] = [
        ['tunnel', { kind: 'ssh' }],
        ['tunnel', { kind: 'shell' }],
        ['tunnel', { kind: 'port', port: 3000 }],
        ['port-forward', { port: 3000 }],
        ['observe', {}],
      ];
      const before = await ctx.store.db.selectFrom('sandbox_tokens').select('id').execute();
      for (const [path, payload] of routes) {
        expect(expectError(await post(path, viewer, payload), 'FORBIDDEN').error.details).toEqual({
          required_role: 'developer',
        });
        expect(expectError(await post(path, readOnly, payload), 'FORBIDDEN').error.details).toEqual({
          required_scope: 'sandbox:exec',
        });
        expectError(await post(path, stranger.headers, payload), 'SANDBOX_NOT_FOUND');
        const anonymous = await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/${path}`,
          payload,
        });
        expectError(anonymous, 'UNAUTHORIZED');
      }
      // Nothing was minted by any refused request.
      const after = await ctx.store.db.selectFrom('sandbox_tokens').select('id').execute();
      expect(after.length).toBe(before.length);
    });

    it('refuses to mint for a sandbox that is not running (409)', async () => {
      const sandbox = await createSandbox(ctx, owner.headers);
      const stopped = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox}/stop`,
        headers: owner.headers,
      });
      expect(stopped.statusCode, stopped.body).toBe(200);
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${sandbox}/tunnel`,
        headers: owner.headers,
        payload: { kind: 'shell' },
      });
      expectError(res, 'INVALID_STATE');
    });

    it('documents the token routes in OpenAPI', async () => {
      const doc = (await ctx.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
      expect(doc.paths['/v1/sandboxes/{id}/tunnel'].post).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/port-forward'].post).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/tokens'].get).toBeDefined();
      expect(doc.paths['/v1/sandboxes/{id}/tokens/{token_id}'].delete).toBeDefined();
    });
  },
  { runtime: true, config: { publicUrl: PUBLIC_URL, sshPort: 2022 } },
);
