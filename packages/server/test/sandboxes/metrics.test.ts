import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRuntime, createTemplateStore } from '@corral/runtime';
import pino from 'pino';
import { expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { openStore } from '../../src/store/index.js';
import {
  createTestDatabase,
  describeStores,
  expectError,
  type StoreContext,
  testConfig,
} from '../support/app.js';
import { TEST_TEMPLATE_DIR } from '../support/runtime.js';

/** The value of one sample line of `/metrics` (`name{labels}`), or null when absent. */
async function sample(ctx: StoreContext, name: string): Promise<number | null> {
  const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

describeStores(
  'sandboxes: metrics and readiness',
  (ctx) => {
    it('counts creates, deletes, active sandboxes and execs', async () => {
      const caller = await ctx.createCaller();
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/sandboxes',
          headers: caller.headers,
          payload: {},
        });
        expect(res.statusCode, res.body).toBe(201);
        ids.push(res.json().id);
      }
      expect(await sample(ctx, 'corral_sandboxes_active')).toBe(2);

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${ids[0]}`,
        headers: caller.headers,
      });
      expect(deleted.statusCode).toBe(204);
      const exec = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${ids[1]}/exec`,
        headers: caller.headers,
        payload: { command: 'true' },
      });
      expect(exec.statusCode, exec.body).toBe(200);
      // A create that fails (unknown template) is not counted as created.
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/sandboxes',
          headers: caller.headers,
          payload: { template: 'no-such-template' },
        }),
        'TEMPLATE_NOT_FOUND',
      );

      // The gauge is refreshed from the store in the background after each change.
      const deadline = Date.now() + 10_000;
      while ((await sample(ctx, 'corral_sandboxes_active')) !== 1 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(await sample(ctx, 'corral_sandboxes_active')).toBe(1);
      expect(await sample(ctx, 'corral_sandbox_create_total{result="ok"}')).toBe(2);
      expect(await sample(ctx, 'corral_sandbox_create_total{result="error"}')).toBeNull();
      expect(await sample(ctx, 'corral_sandbox_delete_total{reason="api"}')).toBe(1);
      expect(await sample(ctx, 'corral_exec_total{mode="sync",result="ok"}')).toBe(1);
      expect(await sample(ctx, 'corral_exec_duration_seconds_count{mode="sync"}')).toBe(1);

      await ctx.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${ids[1]}`, headers: caller.headers });
      expect(await sample(ctx, 'corral_sandbox_delete_total{reason="api"}')).toBe(2);
    });

    it('GET /readyz checks the runtime beside the database', async () => {
      const res = await ctx.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok', runtime: 'ok' } });
    });
  },
  { runtime: true },
);

it('GET /readyz is 503 naming the runtime when the runtime cannot start', async () => {
  const database = await createTestDatabase('sqlite');
  const config = testConfig({ ...database.overrides, templateDir: TEST_TEMPLATE_DIR });
  const store = openStore(config);
  await store.migrate();
  // A real local runtime whose state directory cannot be made (its parent is a file): it
  // never becomes ready.
  const notADirectory = join(config.dataDir, 'not-a-directory');
  writeFileSync(notADirectory, '');
  const runtime = createRuntime({
    isolation: 'local',
    stateDir: join(notADirectory, 'runtime'),
    templates: createTemplateStore({ dir: TEST_TEMPLATE_DIR }),
  });
  const app = await buildApp({
    config,
    store,
    logger: pino({ level: 'silent' }),
    defaultMetrics: false,
    runtime,
    templates: createTemplateStore({ dir: TEST_TEMPLATE_DIR }),
  });
  try {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    const body = expectError(res, 'CAPACITY_EXHAUSTED');
    expect(body.error.details).toEqual({
      checks: { database: 'ok', runtime: 'failed' },
      failing: ['runtime'],
    });
  } finally {
    await app.close();
    await runtime.close();
    await store.close();
    await database.drop();
  }
});
