import { describe, expect, it } from 'vitest';
import { describeStores } from '../support/app.js';
import {
  asSession,
  bearer,
  createKey,
  expectError,
  registerAccount,
  sessionCookie,
  uniqueEmail,
} from './helpers.js';

describeStores('auth: register, login, logout, me', (ctx) => {
  describe('POST /v1/auth/register', () => {
    it('creates the user, a personal workspace they own and a session cookie', async () => {
      const email = uniqueEmail('reg');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { email: `  ${email.toUpperCase()} `, password: 'long enough password', name: 'Ada' },
      });
      expect(response.statusCode, response.body).toBe(201);
      const body = response.json();
      expect(body.user).toMatchObject({ email, name: 'Ada', is_admin: false });
      expect(body.user.id).toMatch(/^usr_/);
      expect(body.workspace).toMatchObject({ personal: true, role: 'owner', created_by: body.user.id });
      expect(body.workspace.id).toMatch(/^ws_/);
      expect(body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(body).not.toHaveProperty('user.password_hash');
      const cookie = response.cookies.find((c) => c.name === 'corral_session')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
      expect(cookie.secure).toBeFalsy();
      expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const member = await ctx.store.db
        .selectFrom('members')
        .selectAll()
        .where('workspace_id', '=', body.workspace.id)
        .executeTakeFirstOrThrow();
      expect(member).toMatchObject({ user_id: body.user.id, role: 'owner' });
    });

    it('stores an argon2id hash, never the password, and only the session token hash', async () => {
      const account = await registerAccount(ctx.app, 'hash', 'my secret password 123');
      const user = await ctx.store.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', account.userId)
        .executeTakeFirstOrThrow();
      expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(user.password_hash).not.toContain('my secret password 123');
      const token = account.cookie.split('=')[1]!;
      const sessions = await ctx.store.db
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', account.userId)
        .execute();
      expect(sessions).toHaveLength(1);
      expect(sessions[0]!.token_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(sessions)).not.toContain(token);
    });

    it('answers 409 CONFLICT for a taken email (any case) and reveals nothing else', async () => {
      const account = await registerAccount(ctx.app, 'dup');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { email: account.email.toUpperCase(), password: 'another password' },
      });
      const details = expectError(response, 409, 'CONFLICT');
      expect(details).toEqual({ field: 'email' });
      expect(response.cookies).toHaveLength(0);
    });

    it.each([
      ['short password', { email: 'a@example.test', password: 'short' }],
      ['too long password', { email: 'a@example.test', password: 'x'.repeat(1025) }],
      ['bad email', { email: 'not-an-email', password: 'long enough password' }],
      ['missing email', { password: 'long enough password' }],
      ['unknown field', { email: 'a@example.test', password: 'long enough password', admin: true }],
      ['wrong type', { email: 'a@example.test', password: 12345678 }],
    ])('answers 400 VALIDATION_ERROR for %s', async (_name, payload) => {
      const response = await ctx.app.inject({ method: 'POST', url: '/v1/auth/register', payload });
      expectError(response, 400, 'VALIDATION_ERROR');
    });
  });

  describe('POST /v1/auth/login', () => {
    it('logs in with the right password and returns a new session and CSRF token', async () => {
      const account = await registerAccount(ctx.app, 'login');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: account.email.toUpperCase(), password: account.password },
        remoteAddress: '10.1.0.1',
      });
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json();
      expect(body.user.id).toBe(account.userId);
      expect(body.csrf_token).not.toBe(account.csrf);
      const cookie = sessionCookie(response);
      expect(cookie).not.toBe(account.cookie);
      const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie } });
      expect(me.statusCode).toBe(200);
      expect(me.json().csrf_token).toBe(body.csrf_token);
    });

    it('answers the same 401 for a wrong password and an unknown email', async () => {
      const account = await registerAccount(ctx.app, 'wrongpw');
      const wrong = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: account.email, password: 'not the password' },
        remoteAddress: '10.1.0.2',
      });
      const unknown = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: uniqueEmail('nobody'), password: 'not the password' },
        remoteAddress: '10.1.0.2',
      });
      expectError(wrong, 401, 'UNAUTHORIZED');
      expectError(unknown, 401, 'UNAUTHORIZED');
      expect(wrong.json().error.message).toBe(unknown.json().error.message);
      expect(wrong.cookies).toHaveLength(0);
    });

    it('answers 400 for a malformed body', async () => {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: 'x@y.z' },
      });
      expectError(response, 400, 'VALIDATION_ERROR');
    });

    it('throttles per email: the 6th attempt is 429 with Retry-After, even with the right password', async () => {
      const account = await registerAccount(ctx.app, 'throttle');
      for (let i = 0; i < 5; i++) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { email: account.email, password: `wrong password ${i}` },
          remoteAddress: `10.2.0.${i + 1}`,
        });
        expectError(response, 401, 'UNAUTHORIZED');
      }
      const sixth = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: account.email, password: account.password },
        remoteAddress: '10.2.0.99',
      });
      expectError(sixth, 429, 'RATE_LIMITED');
      const retryAfter = Number(sixth.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(15 * 60);
      // Another account is not affected.
      const other = await registerAccount(ctx.app, 'throttle-other');
      const ok = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: other.email, password: other.password },
        remoteAddress: '10.2.0.99',
      });
      expect(ok.statusCode).toBe(200);
    });

    it('throttles per IP across many emails', async () => {
      const ip = '10.3.0.1';
      let last = null as Awaited<ReturnType<typeof ctx.app.inject>> | null;
      for (let i = 0; i < 21; i++) {
        last = await ctx.app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { email: uniqueEmail('spray'), password: 'guess guess' },
          remoteAddress: ip,
        });
        if (last.statusCode === 429) break;
      }
      expectError(last!, 429, 'RATE_LIMITED');
      expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    });
  });

  describe('POST /v1/auth/logout', () => {
    it('ends the session: the cookie stops working', async () => {
      const account = await registerAccount(ctx.app, 'logout');
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/logout',
        headers: asSession(account),
      });
      expect(response.statusCode, response.body).toBe(204);
      const cleared = response.cookies.find((c) => c.name === 'corral_session');
      expect(cleared?.value).toBe('');
      const me = await ctx.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { cookie: account.cookie },
      });
      expectError(me, 401, 'UNAUTHORIZED');
      const events = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('actor_id', '=', account.userId)
        .where('action', '=', 'session.delete')
        .execute();
      expect(events).toHaveLength(1);
    });

    it('needs the CSRF token with a cookie (403) and credentials at all (401)', async () => {
      const account = await registerAccount(ctx.app, 'logout-csrf');
      const noToken = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/logout',
        headers: { cookie: account.cookie },
      });
      expectError(noToken, 403, 'FORBIDDEN');
      const none = await ctx.app.inject({ method: 'POST', url: '/v1/auth/logout' });
      expectError(none, 401, 'UNAUTHORIZED');
      const me = await ctx.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { cookie: account.cookie },
      });
      expect(me.statusCode).toBe(200);
    });

    it('is a no-op 204 for a key', async () => {
      const account = await registerAccount(ctx.app, 'logout-key');
      const key = await createKey(ctx.app, account);
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/logout',
        headers: bearer(key.key),
      });
      expect(response.statusCode).toBe(204);
      const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) });
      expect(me.statusCode).toBe(200);
    });
  });

  describe('GET /v1/auth/me', () => {
    it('shows the user and every workspace with the role in it (session)', async () => {
      const account = await registerAccount(ctx.app, 'me');
      const team = await ctx.createWorkspace(account.userId, { name: 'Team' });
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { cookie: account.cookie },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.user).toMatchObject({ id: account.userId, email: account.email });
      expect(body.workspaces.map((w: { id: string }) => w.id).sort()).toEqual(
        [account.workspaceId, team.id].sort(),
      );
      expect(body.workspaces.every((w: { role: string }) => w.role === 'owner')).toBe(true);
      expect(body.auth).toEqual({ kind: 'session', workspace_id: null, key_id: null, scopes: ['*'] });
      expect(body.csrf_token).toBe(account.csrf);
    });

    it("shows a key's workspace and scopes (and only that workspace)", async () => {
      const account = await registerAccount(ctx.app, 'me-key');
      await ctx.createWorkspace(account.userId, { name: 'Other' });
      const key = await createKey(ctx.app, account, { scopes: ['sandbox:read'] });
      for (const headers of [bearer(key.key), { authorization: `ApiKey ${key.key}` }]) {
        const response = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers });
        expect(response.statusCode, response.body).toBe(200);
        const body = response.json();
        expect(body.auth).toEqual({
          kind: 'key',
          workspace_id: account.workspaceId,
          key_id: key.id,
          scopes: ['sandbox:read'],
        });
        expect(body.workspaces.map((w: { id: string }) => w.id)).toEqual([account.workspaceId]);
        expect(body.csrf_token).toBeNull();
      }
    });

    it.each([
      ['nothing', {}],
      ['an unknown key', { authorization: 'Bearer crl_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
      ['a malformed header', { authorization: 'Bearer' }],
      ['an unknown scheme', { authorization: 'Basic dXNlcjpwYXNz' }],
      ['garbage as a JWT', { authorization: 'Bearer a.b.c' }],
      ['ApiKey with a JWT-looking value', { authorization: 'ApiKey a.b.c' }],
      ['an unknown session cookie', { cookie: 'corral_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ])('answers 401 UNAUTHORIZED with %s, without saying why', async (_name, headers) => {
      const response = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers });
      const details = expectError(response, 401, 'UNAUTHORIZED');
      expect(details).toEqual({});
    });

    it('does not fall back to the cookie when an Authorization header is present but invalid', async () => {
      const account = await registerAccount(ctx.app, 'me-both');
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { cookie: account.cookie, authorization: 'Bearer nonsense' },
      });
      expectError(response, 401, 'UNAUTHORIZED');
    });

    it('rejects an expired session', async () => {
      const account = await registerAccount(ctx.app, 'me-expired');
      await ctx.store.db
        .updateTable('sessions')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('user_id', '=', account.userId)
        .execute();
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/v1/auth/me',
        headers: { cookie: account.cookie },
      });
      expectError(response, 401, 'UNAUTHORIZED');
      // The next login clears the user's expired sessions away.
      const login = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { email: account.email, password: account.password },
        remoteAddress: '10.4.0.1',
      });
      expect(login.statusCode).toBe(200);
      const rows = await ctx.store.db
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', account.userId)
        .execute();
      expect(rows).toHaveLength(1);
      expect(Date.parse(rows[0]!.expires_at)).toBeGreaterThan(Date.now());
    });
  });

  describe('CSRF', () => {
    it('requires X-CSRF-Token on cookie-authenticated state-changing requests', async () => {
      const account = await registerAccount(ctx.app, 'csrf');
      const url = '/v1/workspaces';
      const payload = { name: 'CSRF test' };
      const missing = await ctx.app.inject({
        method: 'POST',
        url,
        payload,
        headers: { cookie: account.cookie },
      });
      expect(expectError(missing, 403, 'FORBIDDEN')).toEqual({ reason: 'csrf_token_missing_or_invalid' });
      const wrong = await ctx.app.inject({
        method: 'POST',
        url,
        payload,
        headers: { cookie: account.cookie, 'x-csrf-token': 'x'.repeat(43) },
      });
      expectError(wrong, 403, 'FORBIDDEN');
      const other = await registerAccount(ctx.app, 'csrf-other');
      const foreign = await ctx.app.inject({
        method: 'POST',
        url,
        payload,
        headers: { cookie: account.cookie, 'x-csrf-token': other.csrf },
      });
      expectError(foreign, 403, 'FORBIDDEN');
      const ok = await ctx.app.inject({ method: 'POST', url, payload, headers: asSession(account) });
      expect(ok.statusCode, ok.body).toBe(201);
      const read = await ctx.app.inject({ method: 'GET', url, headers: { cookie: account.cookie } });
      expect(read.statusCode).toBe(200);
    });

    it('is not needed with a key', async () => {
      const account = await registerAccount(ctx.app, 'csrf-key');
      const key = await createKey(ctx.app, account);
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/workspaces',
        payload: { name: 'by key' },
        headers: bearer(key.key),
      });
      expect(response.statusCode, response.body).toBe(201);
    });
  });
});

describeStores(
  'auth: cookie over https',
  (ctx) => {
    it('marks the session cookie Secure when the public URL is https', async () => {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { email: uniqueEmail('secure'), password: 'long enough password' },
      });
      expect(response.statusCode).toBe(201);
      const cookie = response.cookies.find((c) => c.name === 'corral_session')!;
      expect(cookie).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
    });
  },
  { config: { publicUrl: 'https://corral.example.test' } },
);
