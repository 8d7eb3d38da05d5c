import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { isId, newId } from '../../src/ids.js';
import { openStore } from '../../src/store/db.js';
import { decodeCursor, encodeCursor, pageLimit, paginate } from '../../src/store/pagination.js';
import { describeStores } from '../support/app.js';

describeStores(
  'store',
  (ctx) => {
    it('migrations are idempotent: a second run applies nothing', async () => {
      expect(await ctx.store.migrate()).toEqual([]);
      expect(await ctx.store.migrate()).toEqual([]);
    });

    it('several stores migrating the same database at once all succeed', async () => {
      const others = [openStore(ctx.config), openStore(ctx.config), openStore(ctx.config)];
      try {
        const results = await Promise.all(others.map((s) => s.migrate()));
        expect(results).toEqual([[], [], []]);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('ping answers', async () => {
      await expect(ctx.store.ping()).resolves.toBeUndefined();
      expect(ctx.store.dialect).toBe(ctx.driver);
    });

    it('enforces unique emails and foreign keys, and cascades member deletes', async () => {
      const user = await ctx.createUser({ email: 'Unique@Example.test' });
      expect(user.email).toBe('unique@example.test');
      await expect(ctx.createUser({ email: 'unique@example.test' })).rejects.toThrow();
      await expect(
        ctx.store.db
          .insertInto('members')
          .values({
            workspace_id: 'ws_missing',
            user_id: user.id,
            role: 'owner',
            created_at: new Date().toISOString(),
          })
          .execute(),
      ).rejects.toThrow();
      const ws = await ctx.createWorkspace(user.id);
      await ctx.store.db.deleteFrom('workspaces').where('id', '=', ws.id).execute();
      const left = await ctx.store.db
        .selectFrom('members')
        .selectAll()
        .where('workspace_id', '=', ws.id)
        .execute();
      expect(left).toEqual([]);
    });

    it('returns the same types on both drivers (integers, counts, text timestamps)', async () => {
      const user = await ctx.createUser({ isAdmin: true });
      const row = await ctx.store.db
        .selectFrom('users')
        .selectAll()
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow();
      expect(row.is_admin).toBe(1);
      expect(row.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const { n } = await ctx.store.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(typeof n).toBe('number');
      const ws = await ctx.createWorkspace(user.id, { personal: true });
      const wsRow = await ctx.store.db
        .selectFrom('workspaces')
        .selectAll()
        .where('id', '=', ws.id)
        .executeTakeFirstOrThrow();
      expect(wsRow.personal).toBe(1);
      expect(wsRow.deleted_at).toBeNull();
    });

    it('transactions roll back on error', async () => {
      const id = newId('usr');
      await expect(
        ctx.store.db.transaction().execute(async (trx) => {
          await trx
            .insertInto('users')
            .values({
              id,
              email: `${id}@x.test`,
              name: 'x',
              password_hash: null,
              created_at: new Date().toISOString(),
            })
            .execute();
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(
        await ctx.store.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst(),
      ).toBeUndefined();
    });

    it('the audit log records events and pages through them newest first', async () => {
      const target = newId('sbx');
      const recorded = [];
      for (let i = 0; i < 7; i++) {
        recorded.push(
          await ctx.app.audit.record({
            workspaceId: 'ws_audit',
            actorType: 'user',
            actorId: 'usr_a',
            action: `sandbox.step${i}`,
            targetType: 'sandbox',
            targetId: target,
            ip: '127.0.0.1',
            details: { step: i },
          }),
        );
      }
      await ctx.app.audit.record({ actorType: 'system', action: 'other', targetId: newId('sbx') });
      expect(isId(recorded[0]!.id, 'evt')).toBe(true);

      const seen: string[] = [];
      let cursor: string | null = null;
      const pageSizes: number[] = [];
      do {
        const page = await ctx.app.audit.listForTarget(target, { limit: 3, cursor });
        pageSizes.push(page.data.length);
        seen.push(...page.data.map((e) => e.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(pageSizes).toEqual([3, 3, 1]);
      expect(new Set(seen).size).toBe(7);
      // Newest first: ordered by (created_at desc, id desc).
      const expected = [...recorded]
        .sort((a, b) =>
          a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1,
        )
        .map((e) => e.id);
      expect(seen).toEqual(expected);

      const first = await ctx.app.audit.listForTarget(target, { limit: 1 });
      expect(first.data[0]).toMatchObject({ target_type: 'sandbox', actor_type: 'user', ip: '127.0.0.1' });
      expect(typeof first.data[0]!.details).toBe('object');

      const ws = await ctx.app.audit.listForWorkspace('ws_audit', {});
      expect(ws.data).toHaveLength(7);
      expect(ws.next_cursor).toBeNull();
    });

    it('audit records join the caller’s transaction', async () => {
      const target = newId('sbx');
      await expect(
        ctx.store.db.transaction().execute(async (trx) => {
          await ctx.app.audit.record({ actorType: 'system', action: 'x', targetId: target }, trx);
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect((await ctx.app.audit.listForTarget(target)).data).toEqual([]);
    });

    it('paginate works on any table with created_at and id, ascending too', async () => {
      const owner = await ctx.createUser();
      for (let i = 0; i < 5; i++) await ctx.createWorkspace(owner.id, { name: `p${i}` });
      const query = ctx.store.db.selectFrom('workspaces').selectAll().where('created_by', '=', owner.id);
      const asc1 = await paginate(query, { limit: 2 }, { order: 'asc' });
      const asc2 = await paginate(query, { limit: 2, cursor: asc1.next_cursor }, { order: 'asc' });
      const asc3 = await paginate(query, { limit: 2, cursor: asc2.next_cursor }, { order: 'asc' });
      const names = [...asc1.data, ...asc2.data, ...asc3.data].map((w) => w.name);
      expect(new Set(names)).toEqual(new Set(['p0', 'p1', 'p2', 'p3', 'p4']));
      expect(asc3.next_cursor).toBeNull();
    });

    it('a raw query runs the same on both drivers', async () => {
      const result = await sql<{ one: number }>`select 1 as one`.execute(ctx.store.db);
      expect(Number(result.rows[0]!.one)).toBe(1);
    });
  },
  { app: true },
);

it('cursors are opaque, round-trip, and malformed ones are a VALIDATION_ERROR', () => {
  const cursor = encodeCursor({ createdAt: '2026-01-01T00:00:00.000Z', id: 'evt_x' });
  expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  expect(decodeCursor(cursor)).toEqual({ createdAt: '2026-01-01T00:00:00.000Z', id: 'evt_x' });
  for (const bad of ['', '!!!', 'e30', Buffer.from('[1,2]').toString('base64url'), 'x'.repeat(2000)]) {
    expect(() => decodeCursor(bad)).toThrow(ApiError);
  }
  expect(pageLimit(undefined)).toBe(50);
  expect(pageLimit(0)).toBe(1);
  expect(pageLimit(10_000)).toBe(500);
});

it('ids are prefixed base62 with 22 random characters and do not repeat', () => {
  const ids = new Set(Array.from({ length: 10_000 }, () => newId('sbx')));
  expect(ids.size).toBe(10_000);
  for (const id of [...ids].slice(0, 100)) expect(id).toMatch(/^sbx_[0-9A-Za-z]{22}$/);
  expect(isId('sbx_short', 'sbx')).toBe(false);
  expect(isId(newId('ws'), 'sbx')).toBe(false);
});
