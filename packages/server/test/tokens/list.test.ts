import { beforeAll, expect, it } from 'vitest';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { createSandbox, memberOf } from '../terminal/helpers.js';

describeStores(
  'tokens: listing and revoking',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    const list = (headers: { authorization: string }, sandbox = id) =>
      ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${sandbox}/tokens`, headers });
    const revoke = (headers: { authorization: string }, tokenId: string) =>
      ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}/tokens/${tokenId}`, headers });
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
    });

    it('lists every token with its status (active, expired, revoked), newest first, never a secret', async () => {
      const secrets: string[] = [];
      const mint = async (path: string, payload: object) => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/${path}`,
          headers: owner.headers,
          payload,
        });
        expect(res.statusCode, res.body).toBe(201);
        secrets.push(res.json().token);
        return res.json().id as string;
      };
      const expired = await ctx.app.sandboxTokens.mint(
        {
          sandboxId: id,
          workspaceId: owner.workspaceId,
          kind: 'ssh',
          ttlSeconds: 60,
          createdBy: owner.keyId,
        },
        Date.now() - 3600_000,
      );
      secrets.push(expired.token);
      const port = await mint('port-forward', { port: 5173 });
      const shell = await mint('tunnel', { kind: 'shell' });
      const observe = await mint('observe', {});
      expect((await revoke(owner.headers, shell)).statusCode).toBe(204);

      const res = await list(owner.headers);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.next_cursor).toBeNull();
      const ids = body.data.map((t: { id: string }) => t.id);
      expect([...ids].sort()).toEqual([observe, shell, port, expired.id].sort());
      expect(ids.at(-1)).toBe(expired.id);
      const created = body.data.map((t: { created_at: string }) => t.created_at);
      expect(created).toEqual([...created].sort().reverse());
      const byId = new Map(body.data.map((t: { id: string }) => [t.id, t]));
      expect(byId.get(port)).toMatchObject({
        kind: 'port',
        port: 5173,
        session_id: null,
        created_by: owner.keyId,
        revoked_at: null,
        last_used_at: null,
        status: 'active',
      });
      expect(byId.get(shell)).toMatchObject({
        kind: 'shell',
        status: 'revoked',
        revoked_at: expect.any(String),
      });
      expect(byId.get(observe)).toMatchObject({ kind: 'observe', status: 'active' });
      expect(byId.get(expired.id)).toMatchObject({ kind: 'ssh', status: 'expired', revoked_at: null });
      for (const token of body.data) {
        expect(Object.keys(token).sort()).toEqual(
          [
            'created_at',
            'created_by',
            'expires_at',
            'id',
            'kind',
            'last_used_at',
            'port',
            'revoked_at',
            'session_id',
            'status',
          ].sort(),
        );
      }
      for (const secret of secrets) expect(res.body).not.toContain(secret);
      expect(res.body).not.toMatch(/crl_tk_|token_hash/);
      const hashes = await ctx.store.db.selectFrom('sandbox_tokens').select('token_hash').execute();
      for (const { token_hash } of hashes) expect(res.body).not.toContain(token_hash);
    });

    it('guards listing and revoking: viewer 403, wrong scope 403, another workspace 404', async () => {
      const minted = await ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'shell',
        createdBy: owner.keyId,
      });
      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      expect(expectError(await list(viewer), 'FORBIDDEN').error.details).toEqual({
        required_role: 'developer',
      });
      expect(expectError(await revoke(viewer, minted.id), 'FORBIDDEN').error.details).toEqual({
        required_role: 'developer',
      });
      const noScope = await memberOf(ctx, owner.workspaceId, 'developer', ['workspace:read']);
      expect(expectError(await list(noScope), 'FORBIDDEN').error.details).toEqual({
        required_scope: 'sandbox:read',
      });
      // Listing needs sandbox:read; revoking sandbox:exec.
      const readOnly = await memberOf(ctx, owner.workspaceId, 'developer', ['sandbox:read']);
      expect((await list(readOnly)).statusCode).toBe(200);
      expect(expectError(await revoke(readOnly, minted.id), 'FORBIDDEN').error.details).toEqual({
        required_scope: 'sandbox:exec',
      });
      const stranger = await ctx.createCaller();
      expectError(await list(stranger.headers), 'SANDBOX_NOT_FOUND');
      expectError(await revoke(stranger.headers, minted.id), 'SANDBOX_NOT_FOUND');
      expectError(await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/tokens` }), 'UNAUTHORIZED');
      // None of the refused revocations took effect.
      expect(
        await ctx.app.sandboxTokens.verify(minted.token, { kind: 'shell', sandboxId: id }),
      ).not.toBeNull();
      // A stranger's own sandbox cannot reach this token either.
      const theirs = await createSandbox(ctx, stranger.headers);
      const cross = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${theirs}/tokens/${minted.id}`,
        headers: stranger.headers,
      });
      expectError(cross, 'TOKEN_NOT_FOUND');
      expect(
        await ctx.app.sandboxTokens.verify(minted.token, { kind: 'shell', sandboxId: id }),
      ).not.toBeNull();
    });
  },
  { runtime: true },
);
