import pino from 'pino';
import { expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { BuildLog } from '../../src/services/templates-builds.js';
import { isoNow } from '../../src/store/index.js';
import { describeStores } from '../support/app.js';

describeStores(
  'templates: build log',
  (ctx) => {
    const newRow = async () => {
      const user = await ctx.createUser();
      const workspace = await ctx.createWorkspace(user.id);
      const id = newId('tpl');
      await ctx.store.db
        .insertInto('templates')
        .values({
          id,
          workspace_id: workspace.id,
          name: 'logged',
          status: 'building',
          source: 'packages',
          runtime_id: null,
          size_bytes: null,
          error: null,
          created_by: user.id,
          created_at: isoNow(),
          finished_at: null,
          deleted_at: null,
        })
        .execute();
      return id;
    };
    const storedLog = async (id: string) =>
      (
        await ctx.store.db
          .selectFrom('templates')
          .select('log')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).log;

    it('writes progress to the row in batches while the build runs', async () => {
      const id = await newRow();
      const log = new BuildLog(ctx.store.db, id, pino({ level: 'silent' }), 50);
      log.line('first');
      log.line('second\u0000with a NUL');
      expect(await storedLog(id)).toBe('');
      const deadline = Date.now() + 10_000;
      while ((await storedLog(id)) === '' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(await storedLog(id)).toBe('first\nsecondwith a NUL\n');
      expect(await log.close()).toBe('first\nsecondwith a NUL\n');
    });

    it('keeps the tail within the cap, cut at a line start', async () => {
      const id = await newRow();
      const log = new BuildLog(ctx.store.db, id, pino({ level: 'silent' }), 10_000, 1000);
      for (let i = 0; i < 500; i++) log.line(`line ${i} ${'x'.repeat(20)}`);
      const text = await log.close();
      expect(text.length).toBeLessThanOrEqual(1000);
      expect(text.startsWith('line ')).toBe(true);
      expect(text.endsWith(`line 499 ${'x'.repeat(20)}\n`)).toBe(true);
      // Closed before the interval: the caller writes the final text, nothing was written here.
      expect(await storedLog(id)).toBe('');
    });
  },
  { app: false },
);
