import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { signAccessToken } from '../../src/services/tokens.js';
import { describeStores } from '../support/app.js';
import { asSession, bearer, createKey, expectError, registerAccount } from './helpers.js';

describeStores('auth: POST /v1/auth/token (JWT)', (ctx) => {
  const secret = () => new TextEncoder().encode(ctx.config.jwtSecret);

  it("exchanges a key for a 15-minute JWT that acts with the key's user, workspace and scopes", async () => {
    const account = await registerAccount(ctx.app, 'jwt');
    const key = await createKey(ctx.app, account, { scopes: ['sandbox:read', 'workspace:admin'] });
    const before = Date.now();
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { api_key: key.key },
    });
    expect(response.statusCode, response.body).toBe(200);
    const { token, expires_at } = response.json();
    expect(token.split('.')).toHaveLength(3);
    const lifetime = Date.parse(expires_at) - before;
    expect(lifetime).toBeGreaterThan(14 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(15 * 60_000 + 1000);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ sub: account.userId, wid: account.workspaceId, kid: key.id });
    expect(claims.scopes).toEqual(['sandbox:read', 'workspace:admin']);
    expect(typeof claims.jti).toBe('string');
    expect(claims.exp - claims.iat).toBe(15 * 60);
    const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json().auth).toEqual({
      kind: 'jwt',
      workspace_id: account.workspaceId,
      key_id: key.id,
      scopes: ['sandbox:read', 'workspace:admin'],
    });
    // A JWT is a header credential: no CSRF token needed for writes.
    const write = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/workspaces/${account.workspaceId}`,
      headers: bearer(token),
      payload: { name: 'renamed by jwt' },
    });
    expect(write.statusCode, write.body).toBe(200);
  });

  it("never outlives the key's own expiry", async () => {
    const account = await registerAccount(ctx.app, 'jwt-short');
    const keyExpiry = new Date(Date.now() + 5 * 60_000);
    const key = await createKey(ctx.app, account, { expires_at: keyExpiry.toISOString() });
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { api_key: key.key },
    });
    expect(Date.parse(response.json().expires_at)).toBeLessThanOrEqual(keyExpiry.getTime());
  });

  it.each([
    ['an unknown key', { api_key: 'crl_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['not a key', { api_key: 'hunter2' }],
  ])('answers 401 for %s', async (_name, payload) => {
    const response = await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload });
    expectError(response, 401, 'UNAUTHORIZED');
  });

  it.each([
    ['no body field', {}],
    ['a wrong type', { api_key: 42 }],
    ['an unknown field', { api_key: 'crl_sk_x', scopes: ['*'] }],
  ])('answers 400 VALIDATION_ERROR for %s', async (_name, payload) => {
    const response = await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload });
    expectError(response, 400, 'VALIDATION_ERROR');
  });

  it('an expired key cannot get a token', async () => {
    const account = await registerAccount(ctx.app, 'jwt-expkey');
    const key = await createKey(ctx.app, account);
    await ctx.store.db
      .updateTable('api_keys')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', key.id)
      .execute();
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { api_key: key.key },
    });
    expectError(response, 401, 'UNAUTHORIZED');
  });

  describe('verification', () => {
    it('rejects an expired JWT', async () => {
      const account = await registerAccount(ctx.app, 'jwt-exp');
      const key = await createKey(ctx.app, account);
      const claims = { sub: account.userId, wid: account.workspaceId, kid: key.id, scopes: ['*'] };
      const expired = await signAccessToken(secret(), claims, new Date(Date.now() - 1000));
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(expired.token) }),
        401,
        'UNAUTHORIZED',
      );
      const fresh = await signAccessToken(secret(), claims);
      expect(
        (await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(fresh.token) }))
          .statusCode,
      ).toBe(200);
    });

    it('rejects a JWT signed with another secret, a tampered one, alg none, and a mismatched key', async () => {
      const account = await registerAccount(ctx.app, 'jwt-bad');
      const key = await createKey(ctx.app, account, { scopes: ['sandbox:read'] });
      const claims = { sub: account.userId, wid: account.workspaceId, kid: key.id, scopes: ['sandbox:read'] };
      const other = await signAccessToken(
        new TextEncoder().encode('another-secret-'.padEnd(48, 'y')),
        claims,
      );
      const good = (await signAccessToken(secret(), claims)).token;
      const [h, , s] = good.split('.');
      const widened = Buffer.from(
        JSON.stringify({ ...claims, scopes: ['*'], iss: 'corral', aud: 'corral-api', exp: 9e9 }),
      ).toString('base64url');
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${widened}.`;
      const stranger = await registerAccount(ctx.app, 'jwt-stranger');
      const wrongUser = await signAccessToken(secret(), { ...claims, sub: stranger.userId });
      const wrongWorkspace = await signAccessToken(secret(), { ...claims, wid: stranger.workspaceId });
      const noAudience = await new SignJWT({ wid: claims.wid, scopes: claims.scopes, kid: claims.kid })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(claims.sub)
        .setJti('x')
        .setExpirationTime('5m')
        .sign(secret());
      for (const token of [
        other.token,
        `${h}.${widened}.${s}`,
        none,
        wrongUser.token,
        wrongWorkspace.token,
        noAudience,
      ]) {
        const response = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });
        expectError(response, 401, 'UNAUTHORIZED');
      }
    });

    it("narrows a JWT's scopes to its key's current ones", async () => {
      const account = await registerAccount(ctx.app, 'jwt-narrow');
      const key = await createKey(ctx.app, account, { scopes: ['sandbox:read'] });
      const forged = await signAccessToken(secret(), {
        sub: account.userId,
        wid: account.workspaceId,
        kid: key.id,
        scopes: ['sandbox:read', 'workspace:admin'],
      });
      const me = await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(forged.token) });
      expect(me.json().auth.scopes).toEqual(['sandbox:read']);
    });

    it("stops working when the key's workspace is deleted", async () => {
      const account = await registerAccount(ctx.app, 'jwt-wsdel');
      const team = await ctx.createWorkspace(account.userId, { name: 'doomed' });
      const key = await createKey(ctx.app, account, { workspace_id: team.id });
      const token = (
        await ctx.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: key.key } })
      ).json().token;
      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/workspaces/${team.id}`,
        headers: asSession(account),
      });
      expect(deleted.statusCode).toBe(204);
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) }),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await ctx.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }),
        401,
        'UNAUTHORIZED',
      );
    });
  });
});
