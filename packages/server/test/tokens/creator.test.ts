import { beforeAll, expect, it } from 'vitest';
import { addMember, describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, refusal, wsBase } from '../terminal/helpers.js';

describeStores(
  'tokens: a token acts for its creator, and stops when the creator loses access',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    /** A developer of the owner's workspace with an API key: who mints in these tests. */
    const developer = () => addMember(ctx, owner.workspaceId, 'developer');
    const mintShell = async (headers: { authorization: string }) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/tunnel`,
        headers,
        payload: { kind: 'shell' },
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string; url: string };
    };
    const opens = (token: string) => ctx.app.sandboxTokens.verify(token, { kind: 'shell', sandboxId: id });
    const setRole = (userId: string, role: string) =>
      ctx.store.db
        .updateTable('members')
        .set({ role })
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', userId)
        .execute();

    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
    });

    it('a member demoted to viewer (or removed) can no longer use the tokens they minted; restored, they can', async () => {
      const dev = await developer();
      const shell = await mintShell(dev.headers);
      expect(await opens(shell.token)).not.toBeNull();

      await setRole(dev.userId, 'viewer');
      expect(await opens(shell.token)).toBeNull();
      const u = new URL(shell.url);
      expect((await refusal(`${base}${u.pathname}${u.search}`)).statusCode).toBe(401);

      await setRole(dev.userId, 'developer');
      expect(await opens(shell.token)).not.toBeNull();

      await ctx.store.db
        .deleteFrom('members')
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', dev.userId)
        .execute();
      expect(await opens(shell.token)).toBeNull();
    });

    it('a port token named by a preview cookie (checked by id) follows its creator too', async () => {
      const dev = await developer();
      const minted = await ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'port',
        port: 3000,
        createdBy: dev.keyId,
      });
      const live = () => ctx.app.sandboxTokens.stillValid(id, minted.id, 'port');
      expect(await live()).toBe(true);
      expect(await ctx.app.sandboxTokens.stillValid(id, minted.id, 'shell')).toBe(false);
      await setRole(dev.userId, 'viewer');
      expect(await live()).toBe(false);
      await setRole(dev.userId, 'developer');
      expect(await live()).toBe(true);
      await ctx.app.sandboxTokens.revoke(id, minted.id);
      expect(await live()).toBe(false);
    });

    it('revoking the API key that minted a token stops the token too', async () => {
      const dev = await developer();
      const shell = await mintShell(dev.headers);
      expect(await opens(shell.token)).not.toBeNull();
      const res = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/keys/${dev.keyId}`,
        headers: dev.headers,
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(await opens(shell.token)).toBeNull();
    });

    it('a token minted by a user (session or JWT) follows that user’s membership', async () => {
      const dev = await developer();
      const minted = await ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'shell',
        createdBy: dev.userId,
      });
      expect(await opens(minted.token)).not.toBeNull();
      await setRole(dev.userId, 'viewer');
      expect(await opens(minted.token)).toBeNull();
    });
  },
  { runtime: true },
);
