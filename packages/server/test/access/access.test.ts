import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { requireRole, requireScope, roleAtLeast } from '../../src/services/access.js';
import { LoginThrottle } from '../../src/services/login-throttle.js';
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../src/services/passwords.js';
import { firstUncoveredScope, isValidScope, scopeAllows } from '../../src/services/scopes.js';
import { generateApiKey, sha256Hex, signAccessToken, verifyAccessToken } from '../../src/services/tokens.js';
import { openStore, type Store } from '../../src/store/index.js';
import { asSession, bearer, createKey, expectError, registerAccount } from '../auth/helpers.js';
import { createTestDatabase, DRIVERS, type TestDatabase, testConfig } from '../support/app.js';

describe('scopes', () => {
  it('covers exact scopes, `*` and `resource:*` wildcards', () => {
    expect(scopeAllows(['sandbox:read'], 'sandbox:read')).toBe(true);
    expect(scopeAllows(['sandbox:read'], 'sandbox:write')).toBe(false);
    expect(scopeAllows(['*'], 'billing:read')).toBe(true);
    expect(scopeAllows(['sandbox:*'], 'sandbox:exec')).toBe(true);
    expect(scopeAllows(['sandbox:*'], 'snapshot:read')).toBe(false);
    expect(scopeAllows(['snapshot:*'], 'snapshot:*')).toBe(true);
    expect(scopeAllows(['snapshot:read'], 'snapshot:*')).toBe(false);
    expect(scopeAllows(['sandbox:*'], '*')).toBe(false);
    expect(scopeAllows([], 'sandbox:read')).toBe(false);
  });

  it('finds the first scope a creator does not hold', () => {
    expect(firstUncoveredScope(['sandbox:*'], ['sandbox:read', 'sandbox:exec'])).toBeNull();
    expect(firstUncoveredScope(['sandbox:read'], ['sandbox:read', 'alerts:*'])).toBe('alerts:*');
  });

  it('accepts the documented scopes and narrower actions of known resources only', () => {
    for (const scope of [
      '*',
      'sandbox:create',
      'snapshot:*',
      'billing:*',
      'alerts:*',
      'workspace:admin',
      'snapshot:read',
    ]) {
      expect(isValidScope(scope), scope).toBe(true);
    }
    for (const scope of ['', 'root', 'pizza:*', 'sandbox:', 'sandbox:READ', 'sandbox:read ', '**']) {
      expect(isValidScope(scope), scope).toBe(false);
    }
  });

  it('orders roles owner > maintainer > developer > viewer', () => {
    expect(roleAtLeast('owner', 'maintainer')).toBe(true);
    expect(roleAtLeast('developer', 'developer')).toBe(true);
    expect(roleAtLeast('viewer', 'developer')).toBe(false);
    expect(roleAtLeast('bogus', 'viewer')).toBe(false);
  });
});

describe('login throttle', () => {
  it('blocks after 5 failures per email for the rest of the window, then forgets', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle({ perEmail: 5, perIp: 20, windowMs: 900_000 }, () => now);
    for (let i = 0; i < 5; i++) {
      expect(throttle.retryAfterSeconds('a@x.y', `ip${i}`)).toBe(0);
      throttle.recordFailure('a@x.y', `ip${i}`);
    }
    expect(throttle.retryAfterSeconds('a@x.y', 'ip9')).toBe(900);
    expect(throttle.retryAfterSeconds('b@x.y', 'ip0')).toBe(0);
    now += 600_000;
    expect(throttle.retryAfterSeconds('a@x.y', 'ip9')).toBe(300);
    now += 300_000;
    expect(throttle.retryAfterSeconds('a@x.y', 'ip9')).toBe(0);
  });

  it('counts per IP too, and a success clears only the email', () => {
    const throttle = new LoginThrottle({ perEmail: 5, perIp: 3, windowMs: 60_000 }, () => 0);
    for (const email of ['a', 'b', 'c']) throttle.recordFailure(email, 'ip');
    expect(throttle.retryAfterSeconds('d', 'ip')).toBe(60);
    throttle.recordSuccess('a');
    expect(throttle.retryAfterSeconds('a', 'ip')).toBe(60);
    expect(throttle.retryAfterSeconds('a', 'other-ip')).toBe(0);
  });
});

describe('tokens and passwords', () => {
  it('generates 256-bit keys with a 12-character prefix and a SHA-256 hash', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^crl_sk_[A-Za-z0-9_-]{43}$/);
    expect(a.prefix).toBe(a.key.slice(0, 12));
    expect(a.hash).toBe(sha256Hex(a.key));
    expect(a.key).not.toBe(b.key);
  });

  it('signs and verifies access JWTs; rejects expired and foreign ones', async () => {
    const secret = new TextEncoder().encode('s'.repeat(48));
    const claims = { sub: 'usr_a', wid: 'ws_a', kid: 'key_a', scopes: ['sandbox:read'] };
    const { token } = await signAccessToken(secret, claims);
    expect(await verifyAccessToken(secret, token)).toMatchObject(claims);
    const expired = await signAccessToken(secret, claims, new Date(Date.now() - 1000));
    expect(await verifyAccessToken(secret, expired.token)).toBeNull();
    expect(await verifyAccessToken(new TextEncoder().encode('t'.repeat(48)), token)).toBeNull();
    expect(await verifyAccessToken(secret, 'not.a.jwt')).toBeNull();
  });

  it('hashes passwords with argon2id and verifies them', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse')).toBe(true);
    expect(await verifyPassword(hash, 'wrong horse')).toBe(false);
    expect(await verifyPassword('not a hash', 'x')).toBe(false);
    expect(await verifyAgainstDummy('anything')).toBe(false);
  });
});

/*
 * requireScope / requireRole as later resources (sandboxes) will use them: a route declaring
 * `config: { scope }` and checking the workspace role with a resource-specific 404 code.
 */
for (const driver of DRIVERS) {
  describe(`requireScope / requireRole on a resource route [${driver}]`, () => {
    let database: TestDatabase;
    let store: Store;
    let app: App;

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      const config = testConfig(database.overrides);
      store = openStore(config);
      await store.migrate();
      app = await buildApp({ config, store, logger: pino({ level: 'silent' }), defaultMetrics: false });
      app.get<{ Params: { id: string } }>(
        '/v1/test/workspaces/:id/things',
        { config: { scope: 'sandbox:read' } },
        async (request) => ({
          role: (await requireRole(request, request.params.id, 'viewer', 'SANDBOX_NOT_FOUND')).role,
        }),
      );
      app.post<{ Params: { id: string } }>(
        '/v1/test/workspaces/:id/things',
        { config: { scope: 'sandbox:create' } },
        async (request) => {
          await requireRole(request, request.params.id, 'developer', 'SANDBOX_NOT_FOUND');
          requireScope(request, 'sandbox:exec');
          return { ok: true };
        },
      );
      await app.ready();
    });

    afterAll(async () => {
      await app?.close();
      await store?.close();
      await database?.drop();
    });

    it('checks declared and in-handler scopes with wildcard semantics (403 naming the scope)', async () => {
      const account = await registerAccount(app, 'acc-scope');
      const url = `/v1/test/workspaces/${account.workspaceId}/things`;
      const all = await createKey(app, account, { scopes: ['*'] });
      const sandboxAll = await createKey(app, account, { scopes: ['sandbox:*'] });
      const readOnly = await createKey(app, account, { scopes: ['sandbox:read'] });
      const createOnly = await createKey(app, account, { scopes: ['sandbox:create'] });
      for (const key of [all, sandboxAll]) {
        expect((await app.inject({ method: 'GET', url, headers: bearer(key.key) })).statusCode).toBe(200);
        expect((await app.inject({ method: 'POST', url, headers: bearer(key.key) })).statusCode).toBe(200);
      }
      expect((await app.inject({ method: 'GET', url, headers: bearer(readOnly.key) })).json()).toEqual({
        role: 'owner',
      });
      expect(
        expectError(
          await app.inject({ method: 'POST', url, headers: bearer(readOnly.key) }),
          403,
          'FORBIDDEN',
        ),
      ).toEqual({
        required_scope: 'sandbox:create',
      });
      expect(
        expectError(
          await app.inject({ method: 'POST', url, headers: bearer(createOnly.key) }),
          403,
          'FORBIDDEN',
        ),
      ).toEqual({ required_scope: 'sandbox:exec' });
      expect(
        expectError(
          await app.inject({ method: 'GET', url, headers: bearer(createOnly.key) }),
          403,
          'FORBIDDEN',
        ),
      ).toEqual({
        required_scope: 'sandbox:read',
      });
      expectError(await app.inject({ method: 'GET', url }), 401, 'UNAUTHORIZED');
    });

    it("answers the resource's 404 for another workspace and 403 for a too weak role", async () => {
      const owner = await registerAccount(app, 'acc-owner');
      const viewer = await registerAccount(app, 'acc-viewer');
      const url = `/v1/test/workspaces/${owner.workspaceId}/things`;
      expectError(
        await app.inject({ method: 'GET', url, headers: { cookie: viewer.cookie } }),
        404,
        'SANDBOX_NOT_FOUND',
      );
      const viewerKey = await createKey(app, viewer);
      expectError(
        await app.inject({ method: 'GET', url, headers: bearer(viewerKey.key) }),
        404,
        'SANDBOX_NOT_FOUND',
      );
      const added = await app.inject({
        method: 'POST',
        url: `/v1/workspaces/${owner.workspaceId}/members`,
        headers: asSession(owner),
        payload: { user_id: viewer.userId, role: 'viewer' },
      });
      expect(added.statusCode).toBe(201);
      expect((await app.inject({ method: 'GET', url, headers: { cookie: viewer.cookie } })).json()).toEqual({
        role: 'viewer',
      });
      // The viewer's personal key still acts in the viewer's personal workspace only.
      expectError(
        await app.inject({ method: 'GET', url, headers: bearer(viewerKey.key) }),
        404,
        'SANDBOX_NOT_FOUND',
      );
      expect(
        expectError(await app.inject({ method: 'POST', url, headers: asSession(viewer) }), 403, 'FORBIDDEN'),
      ).toEqual({ required_role: 'developer' });
    });
  });
}
