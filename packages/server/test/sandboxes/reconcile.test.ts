import { expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { LOST_BY_RUNTIME, reconcileSandboxes } from '../../src/services/sandboxes/reconcile.js';
import { runtimeResources } from '../../src/services/sandboxes/service.js';
import { DEFAULT_RESOURCES } from '../../src/services/sandboxes/spec.js';
import { isoNow } from '../../src/store/db.js';
import type { SandboxRow } from '../../src/store/schema.js';
import { describeStores, type StoreContext } from '../support/app.js';

/** Inserts a sandbox row in `status` straight into the store (no runtime call). */
async function insertRow(
  ctx: StoreContext,
  owner: { userId: string; workspaceId: string },
  status: string,
  patch: Partial<SandboxRow> = {},
): Promise<string> {
  const id = newId('sbx');
  const now = isoNow();
  await ctx.store.db
    .insertInto('sandboxes')
    .values({
      id,
      workspace_id: owner.workspaceId,
      name: id,
      status,
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
      created_by: owner.userId,
      created_at: now,
      updated_at: now,
      started_at: status === 'starting' ? null : now,
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      last_activity_at: now,
      deleted_at: null,
      ...patch,
    })
    .execute();
  return id;
}

/** Makes sandbox `id` in the runtime (running), as a create would. */
async function makeInRuntime(ctx: StoreContext, id: string): Promise<void> {
  await ctx.engine.runtime.create({
    id,
    template: 'base',
    resources: runtimeResources(DEFAULT_RESOURCES),
    env: {},
    network: { mode: 'none' },
    metadata: {},
  });
}

async function rowOf(ctx: StoreContext, id: string): Promise<SandboxRow> {
  return ctx.store.db.selectFrom('sandboxes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function actionsOf(ctx: StoreContext, id: string): Promise<{ action: string; actor_type: string }[]> {
  return ctx.store.db
    .selectFrom('audit_events')
    .select(['action', 'actor_type'])
    .where('target_id', '=', id)
    .execute();
}

async function metric(ctx: StoreContext, line: RegExp): Promise<number> {
  const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
  const match = new RegExp(`^${line.source} (\\d+)$`, 'm').exec(res.body);
  return match ? Number(match[1]) : 0;
}

describeStores(
  'sandboxes: reconciliation of store and runtime',
  (ctx) => {
    it('settles every kind of disagreement, and a second pass finds nothing', async () => {
      const owner = await ctx.createCaller();
      const runtime = ctx.engine.runtime;
      const reconcileDeletes = () => metric(ctx, /corral_sandbox_delete_total\{reason="reconcile"\}/);
      const deletesBefore = await reconcileDeletes();

      // A create interrupted after the runtime made it: row `starting`, sandbox running.
      const startedLate = await insertRow(ctx, owner, 'starting');
      await makeInRuntime(ctx, startedLate);
      // A create interrupted before the runtime made it: row `starting`, no sandbox; with env.
      const neverMade = await insertRow(ctx, owner, 'starting');
      await ctx.store.db
        .insertInto('sandbox_env')
        .values(ctx.app.sandboxes.encryptEnv(neverMade, { TOKEN: 'x' }))
        .execute();
      // A running sandbox the runtime lost.
      const lost = await insertRow(ctx, owner, 'running');
      // A sandbox that failed to create: `error`, no runtime sandbox — already settled.
      const failed = await insertRow(ctx, owner, 'error', { error: 'template broke' });
      // A runtime sandbox the store never had.
      const stranger = newId('sbx');
      await makeInRuntime(ctx, stranger);
      // A delete interrupted between its row update and the runtime call.
      const halfDeleted = await insertRow(ctx, owner, 'deleted', { deleted_at: isoNow() });
      await makeInRuntime(ctx, halfDeleted);
      // Row running, runtime stopped (its processes died).
      const diedQuietly = await insertRow(ctx, owner, 'running');
      await makeInRuntime(ctx, diedQuietly);
      await runtime.stop(diedQuietly);
      // A stop interrupted after the runtime call: row `stopping`, sandbox stopped.
      const stopped = await insertRow(ctx, owner, 'stopping');
      await makeInRuntime(ctx, stopped);
      await runtime.stop(stopped);
      // A stop interrupted before the runtime call: row `stopping`, sandbox still running.
      const stillRunning = await insertRow(ctx, owner, 'stopping');
      await makeInRuntime(ctx, stillRunning);
      // Row paused, runtime running.
      const thawed = await insertRow(ctx, owner, 'paused');
      await makeInRuntime(ctx, thawed);
      // In agreement: left alone.
      const fine = await insertRow(ctx, owner, 'running');
      await makeInRuntime(ctx, fine);
      const fineBefore = await rowOf(ctx, fine);

      const report = await reconcileSandboxes(ctx.app.sandboxes);
      expect(report).toMatchObject({ orphansDestroyed: 2, ghostsSettled: 2, statusesFixed: 5, failures: 0 });

      // (c) the runtime's state wins; a finished create is running with started_at.
      const late = await rowOf(ctx, startedLate);
      expect(late).toMatchObject({ status: 'running', deleted_at: null, error: null });
      expect(late.started_at).not.toBeNull();
      expect((await rowOf(ctx, diedQuietly)).status).toBe('stopped');
      expect((await rowOf(ctx, stopped)).status).toBe('stopped');
      expect((await rowOf(ctx, stillRunning)).status).toBe('running');
      expect((await rowOf(ctx, thawed)).status).toBe('running');
      expect(await actionsOf(ctx, diedQuietly)).toContainEqual({
        action: 'sandbox.reconcile_status',
        actor_type: 'system',
      });

      // (b) an interrupted create is deleted with its env; a lost sandbox is kept, as `error`.
      const gone = await rowOf(ctx, neverMade);
      expect(gone.status).toBe('deleted');
      expect(gone.deleted_at).not.toBeNull();
      expect(
        await ctx.store.db
          .selectFrom('sandbox_env')
          .selectAll()
          .where('sandbox_id', '=', neverMade)
          .execute(),
      ).toEqual([]);
      expect(await actionsOf(ctx, neverMade)).toEqual([
        { action: 'sandbox.create_interrupted', actor_type: 'system' },
      ]);
      expect(await rowOf(ctx, lost)).toMatchObject({
        status: 'error',
        error: LOST_BY_RUNTIME,
        deleted_at: null,
      });
      expect(await actionsOf(ctx, lost)).toEqual([{ action: 'sandbox.lost', actor_type: 'system' }]);
      expect(await rowOf(ctx, failed)).toMatchObject({ status: 'error', error: 'template broke' });

      // (a, d) orphans are destroyed; only the one that had a row counts as a delete.
      expect(await runtime.get(stranger)).toBeNull();
      expect(await runtime.get(halfDeleted)).toBeNull();
      expect(await actionsOf(ctx, halfDeleted)).toEqual([
        { action: 'sandbox.reconcile_destroy', actor_type: 'system' },
      ]);
      expect(await reconcileDeletes()).toBe(deletesBefore + 1);

      expect(await rowOf(ctx, fine)).toEqual(fineBefore);
      expect(await actionsOf(ctx, fine)).toEqual([]);

      // Store and runtime agree now: every live row's sandbox in its state, nothing else.
      const live = await ctx.store.db
        .selectFrom('sandboxes')
        .select(['id', 'status'])
        .where('workspace_id', '=', owner.workspaceId)
        .where('deleted_at', 'is', null)
        .where('status', '!=', 'error')
        .execute();
      const states = new Map((await runtime.list()).map((info) => [info.id, info.state]));
      for (const row of live) expect(states.get(row.id), row.id).toBe(row.status);
      expect([...states.keys()].sort()).toEqual(live.map((row) => row.id).sort());
      // The gauge counts the active ones: startedLate, stillRunning, thawed, fine (all running).
      expect(await metric(ctx, /corral_sandboxes_active/)).toBe(4);

      const again = await reconcileSandboxes(ctx.app.sandboxes);
      expect(again).toMatchObject({ orphansDestroyed: 0, ghostsSettled: 0, statusesFixed: 0, failures: 0 });

      for (const id of states.keys()) await runtime.destroy(id);
      await reconcileSandboxes(ctx.app.sandboxes);
    });

    it('a periodic pass leaves a young transitional row alone, settles an old one', async () => {
      const owner = await ctx.createCaller();
      // A create in flight: inserted, the runtime call not made yet.
      const inFlight = await insertRow(ctx, owner, 'starting');
      const stale = await insertRow(ctx, owner, 'starting', {
        updated_at: new Date(Date.now() - 3_600_000).toISOString(),
      });

      const report = await reconcileSandboxes(ctx.app.sandboxes, { mode: 'periodic' });
      expect(report.ghostsSettled).toBe(1);
      expect((await rowOf(ctx, inFlight)).status).toBe('starting');
      expect((await rowOf(ctx, stale)).status).toBe('deleted');

      // At start-up nothing is in flight: the young one is settled too.
      await reconcileSandboxes(ctx.app.sandboxes);
      expect((await rowOf(ctx, inFlight)).status).toBe('deleted');
    });

    it('a pass re-reads under the lock: a lifecycle action that held it is not undone', async () => {
      const owner = await ctx.createCaller();
      const id = await insertRow(ctx, owner, 'running');
      await makeInRuntime(ctx, id);
      const locks = ctx.app.sandboxes.locks;
      // A stop action in progress: the runtime has stopped it, the row is written last.
      let stopped!: () => void;
      let release!: () => void;
      const runtimeStopped = new Promise<void>((resolve) => {
        stopped = resolve;
      });
      const held = locks.run(id, async () => {
        await ctx.engine.runtime.stop(id);
        stopped();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        await ctx.app.sandboxes.setStatus(id, 'stopped');
      });
      await runtimeStopped;
      // Let go of the action once the pass queues for the same lock (it saw running vs stopped).
      const queued = new Promise<void>((resolve) => {
        const run = locks.run.bind(locks);
        locks.run = (key, fn) => {
          if (key === id) resolve();
          return run(key, fn);
        };
      });
      const pass = reconcileSandboxes(ctx.app.sandboxes, { mode: 'periodic' });
      await queued;
      release();
      await held;
      expect((await pass).statusesFixed).toBe(0);
      expect((await rowOf(ctx, id)).status).toBe('stopped');
      expect(await actionsOf(ctx, id)).toEqual([]);
      await ctx.app.sandboxes.destroy('system', await rowOf(ctx, id));
      expect(await ctx.engine.runtime.get(id)).toBeNull();
    });
  },
  { runtime: true },
);
