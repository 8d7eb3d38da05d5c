import { expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import type { Store } from '../../src/store/index.js';
import { describeStores } from '../support/app.js';

async function insertSession(store: Store, userId: string, expiresAt: Date): Promise<string> {
  const id = newId('ses');
  const now = new Date().toISOString();
  await store.db
    .insertInto('sessions')
    .values({
      id,
      user_id: userId,
      token_hash: newId('ses'),
      csrf_token: 'csrf',
      created_at: now,
      expires_at: expiresAt.toISOString(),
      last_seen_at: now,
      ip: null,
      user_agent: null,
    })
    .execute();
  return id;
}

async function sessionIds(store: Store): Promise<string[]> {
  const rows = await store.db.selectFrom('sessions').select('id').execute();
  return rows.map((row) => row.id);
}

describeStores(
  'expired-session cleanup',
  (ctx) => {
    it('deletes expired sessions periodically while the app runs, and keeps live ones', async () => {
      const user = await ctx.createUser();
      const expired = await insertSession(ctx.store, user.id, new Date(Date.now() - 60_000));
      const live = await insertSession(ctx.store, user.id, new Date(Date.now() + 3_600_000));
      // The job runs every second here: poll with a deadline rather than sleeping.
      const deadline = Date.now() + 10_000;
      while ((await sessionIds(ctx.store)).includes(expired)) {
        if (Date.now() > deadline) throw new Error('the expired session was not deleted within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await sessionIds(ctx.store)).toContain(live);
    });
  },
  { config: { sessionCleanupIntervalSeconds: 1 } },
);
