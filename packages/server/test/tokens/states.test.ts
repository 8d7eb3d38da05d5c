import { beforeAll, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { createApiKey } from '../../src/services/keys.js';
import { DEFAULT_RESOURCES } from '../../src/services/sandboxes/spec.js';
import { generateHostKeyPair } from '../../src/services/ssh/host-key.js';
import { addSshKey, liveKeyLogins, parsePublicKey } from '../../src/services/ssh/keys.js';
import { isoNow } from '../../src/store/db.js';
import { describeStores, type StoreContext } from '../support/app.js';

/** Inserts a running sandbox row of `workspaceId` straight into the store (no runtime). */
async function insertSandbox(ctx: StoreContext, workspaceId: string, userId: string): Promise<string> {
  const id = newId('sbx');
  const now = isoNow();
  await ctx.store.db
    .insertInto('sandboxes')
    .values({
      id,
      workspace_id: workspaceId,
      name: id,
      status: 'running',
      template: 'base',
      type: 'standard',
      isolation: 'local',
      resources: JSON.stringify(DEFAULT_RESOURCES),
      network: JSON.stringify({ mode: 'none' }),
      metadata: '{}',
      ports: '[]',
      gui: 0,
      budget_usd: null,
      timeout_seconds: 3600,
      idle_timeout_seconds: null,
      trust_score: null,
      error: null,
      created_by: userId,
      created_at: now,
      updated_at: now,
      started_at: now,
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      last_activity_at: now,
      deleted_at: null,
    })
    .execute();
  return id;
}

describeStores('tokens: the batch re-check of open connections (states, liveKeyLogins)', (ctx) => {
  let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
  let sandbox: string;

  /** A member of the owner's workspace with `role`, and an API key of theirs. */
  const member = async (role: string) => {
    const user = await ctx.createUser();
    await ctx.store.db
      .insertInto('members')
      .values({ workspace_id: owner.workspaceId, user_id: user.id, role, created_at: isoNow() })
      .execute();
    const key = await createApiKey(
      { store: ctx.store, audit: ctx.app.audit },
      { userId: user.id, workspaceId: owner.workspaceId, name: role, scopes: ['*'] },
    );
    return { userId: user.id, keyId: key.id };
  };
  const mint = async (createdBy: string, sandboxId = sandbox, workspaceId = owner.workspaceId) =>
    (await ctx.app.sandboxTokens.mint({ sandboxId, workspaceId, kind: 'shell', createdBy })).id;

  beforeAll(async () => {
    owner = await ctx.createCaller();
    sandbox = await insertSandbox(ctx, owner.workspaceId, owner.userId);
  });

  it('answers every id in one call: live, revoked, expired, or refused (and why the creator matters)', async () => {
    const dev = await member('developer');
    const viewer = await member('viewer');
    const keyRevoked = await member('developer');
    const keyExpired = await member('developer');
    const ids = {
      live: await mint(owner.userId),
      liveByKey: await mint(dev.keyId),
      revoked: await mint(owner.userId),
      expired: (
        await ctx.app.sandboxTokens.mint(
          {
            sandboxId: sandbox,
            workspaceId: owner.workspaceId,
            kind: 'ssh',
            createdBy: owner.userId,
            ttlSeconds: 1,
          },
          Date.now() - 10_000,
        )
      ).id,
      byViewer: await mint(viewer.keyId),
      byRevokedKey: await mint(keyRevoked.keyId),
      byExpiredKey: await mint(keyExpired.keyId),
      byStranger: await mint(newId('usr')),
    };
    await ctx.app.sandboxTokens.revoke(sandbox, ids.revoked);
    await ctx.store.db
      .updateTable('api_keys')
      .set({ revoked_at: isoNow() })
      .where('id', '=', keyRevoked.keyId)
      .execute();
    await ctx.store.db
      .updateTable('api_keys')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', keyExpired.keyId)
      .execute();

    const states = await ctx.app.sandboxTokens.states([...Object.values(ids), 'tun_unknown', ids.live]);
    expect(Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, states.get(id)]))).toEqual({
      live: 'live',
      liveByKey: 'live',
      revoked: 'revoked',
      expired: 'expired',
      byViewer: 'refused',
      byRevokedKey: 'refused',
      byExpiredKey: 'refused',
      byStranger: 'refused',
    });
    expect(states.get('tun_unknown')).toBe('refused');
    expect(states.size).toBe(Object.keys(ids).length + 1);
    // The same answers one at a time (what a new connection is checked with).
    for (const [name, id] of Object.entries(ids)) {
      expect(
        await ctx.app.sandboxTokens.stillValid(sandbox, id, name === 'expired' ? 'ssh' : 'shell'),
        name,
      ).toBe(name === 'live' || name === 'liveByKey');
    }
  });

  it('a deleted sandbox or workspace refuses its tokens', async () => {
    const other = await ctx.createCaller();
    const doomedSandbox = await insertSandbox(ctx, owner.workspaceId, owner.userId);
    const otherSandbox = await insertSandbox(ctx, other.workspaceId, other.userId);
    const inDeleted = await mint(owner.userId, doomedSandbox);
    const inDeletedWorkspace = await mint(other.userId, otherSandbox, other.workspaceId);
    const live = await mint(owner.userId);
    await ctx.store.db
      .updateTable('sandboxes')
      .set({ deleted_at: isoNow() })
      .where('id', '=', doomedSandbox)
      .execute();
    await ctx.store.db
      .updateTable('workspaces')
      .set({ deleted_at: isoNow() })
      .where('id', '=', other.workspaceId)
      .execute();
    const states = await ctx.app.sandboxTokens.states([inDeleted, inDeletedWorkspace, live]);
    expect([states.get(inDeleted), states.get(inDeletedWorkspace), states.get(live)]).toEqual([
      'refused',
      'refused',
      'live',
    ]);
  });

  it('more ids than one query takes are all answered', async () => {
    const many = await Promise.all(Array.from({ length: 30 }, () => mint(owner.userId)));
    const unknown = Array.from({ length: 600 }, (_, i) => `tun_unknown${i}`);
    const states = await ctx.app.sandboxTokens.states([...unknown, ...many]);
    expect(many.map((id) => states.get(id))).toEqual(many.map(() => 'live'));
    expect(states.size).toBe(630);
  });

  it('liveKeyLogins: a key login lives while the key is registered and its user a developer of the sandbox', async () => {
    const dev = await member('developer');
    const viewer = await member('viewer');
    const other = await ctx.createCaller();
    const otherSandbox = await insertSandbox(ctx, other.workspaceId, other.userId);
    const key = (userId: string) =>
      addSshKey(ctx.store.db, userId, 'k', parsePublicKey(generateHostKeyPair().public)).then((k) => k.id);
    const devKey = await key(dev.userId);
    const viewerKey = await key(viewer.userId);
    const deletedKey = await key(dev.userId);
    await ctx.store.db.deleteFrom('ssh_keys').where('id', '=', deletedKey).execute();
    const logins = [
      { keyId: devKey, sandboxId: sandbox },
      { keyId: devKey, sandboxId: otherSandbox },
      { keyId: viewerKey, sandboxId: sandbox },
      { keyId: deletedKey, sandboxId: sandbox },
    ];
    expect([...(await liveKeyLogins(ctx.store.db, logins))]).toEqual([`${devKey} ${sandbox}`]);
    await ctx.store.db
      .updateTable('sandboxes')
      .set({ deleted_at: isoNow() })
      .where('id', '=', sandbox)
      .execute();
    try {
      expect((await liveKeyLogins(ctx.store.db, logins)).size).toBe(0);
    } finally {
      await ctx.store.db
        .updateTable('sandboxes')
        .set({ deleted_at: null })
        .where('id', '=', sandbox)
        .execute();
    }
  });
});
