import pino from 'pino';
import { expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { describeStores, expectError } from '../support/app.js';
import { runIn, waitForTemplate } from './support.js';

/**
 * A real mmdebstrap run takes 20-150 s on 2 cores (more under load). The tree is
 * content-addressed in the machine's shared template cache, so the first run of this suite on a
 * machine builds it and later runs (and the second store driver) reuse it, as the runtime's own
 * template suite does; these tests never delete it.
 */
const BUILD_TIMEOUT_MS = 900_000;
const JQ_TEMPLATE = {
  name: 'srv-jq',
  packages: ['jq'],
  run: ['printf \'%s\\n\' "built as $(id -un)" > /etc/corral-srv-template'],
};
/** Fails once mmdebstrap's apt resolves the packages (after the essential set: ~20-50 s). */
const MISSING_PACKAGE = 'corral-srv-no-such-package';

describeStores(
  'templates: Debian builds',
  (ctx) => {
    const get = (headers: { authorization: string }) => (url: string) =>
      ctx.app.inject({ method: 'GET', url, headers });

    it(
      'builds packages and run steps in the background; sandboxes start from it by id or name',
      async () => {
        const caller = await ctx.createCaller();
        // Run steps run as root on the host while building: only instance admins submit them.
        await ctx.store.db
          .updateTable('users')
          .set({ is_admin: 1 })
          .where('id', '=', caller.userId)
          .execute();
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/templates',
          headers: caller.headers,
          payload: JQ_TEMPLATE,
        });
        expect(res.statusCode, res.body).toBe(202);
        const created = res.json();
        expect(created).toMatchObject({
          name: 'srv-jq',
          status: 'building',
          source: 'packages',
          suite: 'bookworm',
          packages: ['jq'],
          run: JQ_TEMPLATE.run,
          runtime_id: null,
        });

        const ready = await waitForTemplate(get(caller.headers), created.id, BUILD_TIMEOUT_MS);
        expect(ready.status, String(ready.log).slice(-4000)).toBe('ready');
        expect(ready.runtime_id).toMatch(/^tpl_[0-9a-f]{24}$/);
        expect(Number(ready.size_bytes)).toBeGreaterThan(50_000_000);
        const log = String(ready.log);
        expect(log.startsWith('building srv-jq: Debian bookworm + 1 package(s) (jq), 1 run step(s)\n')).toBe(
          true,
        );
        expect(log).toContain(`ready: ${ready.runtime_id}`);
        const tree = (await ctx.engine.templates.list()).find((t) => t.id === ready.runtime_id);
        expect(tree?.name).toBe('srv-jq');

        const sandboxes: string[] = [];
        for (const template of [created.id, 'srv-jq']) {
          const sandbox = await ctx.app.inject({
            method: 'POST',
            url: '/v1/sandboxes',
            headers: caller.headers,
            payload: { template },
          });
          expect(sandbox.statusCode, sandbox.body).toBe(201);
          expect(sandbox.json().template).toBe(template);
          const id = sandbox.json().id as string;
          sandboxes.push(id);
          const jq = await runIn(ctx.engine.runtime, id, 'jq', ['--version']);
          expect(jq.exitCode, jq.stderr).toBe(0);
          expect(jq.stdout).toMatch(/^jq-1\./);
          const marker = await runIn(ctx.engine.runtime, id, 'cat', ['/etc/corral-srv-template']);
          expect(marker.stdout).toBe('built as root\n');
        }

        // In use (by id and by name): 409 naming the sandboxes, and nothing removed.
        const conflict = expectError(
          await ctx.app.inject({
            method: 'DELETE',
            url: `/v1/templates/${created.id}`,
            headers: caller.headers,
          }),
          'CONFLICT',
        );
        expect((conflict.error.details.sandboxes as string[]).sort()).toEqual([...sandboxes].sort());
        await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/sandboxes/${sandboxes[0]}`,
          headers: caller.headers,
        });
        expectError(
          await ctx.app.inject({ method: 'DELETE', url: '/v1/templates/srv-jq', headers: caller.headers }),
          'CONFLICT',
        );
        expect((await get(caller.headers)(`/v1/templates/${created.id}`)).json().status).toBe('ready');
        expect((await ctx.engine.templates.list()).some((t) => t.id === ready.runtime_id)).toBe(true);
      },
      BUILD_TIMEOUT_MS,
    );

    it(
      'records a build that fails (a package Debian does not have) as failed, with the log',
      async () => {
        const caller = await ctx.createCaller();
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/templates',
          headers: caller.headers,
          payload: { name: 'missing', packages: [MISSING_PACKAGE] },
        });
        expect(res.statusCode, res.body).toBe(202);
        // Not ready (building, or already failed): sandboxes cannot start from it.
        const early = expectError(
          await ctx.app.inject({
            method: 'POST',
            url: '/v1/sandboxes',
            headers: caller.headers,
            payload: { template: 'missing' },
          }),
          'INVALID_STATE',
        );
        expect(['building', 'failed']).toContain(early.error.details.status);

        const failed = await waitForTemplate(get(caller.headers), res.json().id, BUILD_TIMEOUT_MS);
        expect(failed.status).toBe('failed');
        expect(failed.error).toBe('template missing failed to build');
        expect(failed.runtime_id).toBeNull();
        const log = String(failed.log);
        // mmdebstrap's own output, then our last line.
        expect(log).toContain(MISSING_PACKAGE);
        expect(log.split('\n').length).toBeGreaterThan(5);
        expect(log.trimEnd().endsWith(`failed: ${failed.error}`)).toBe(true);
      },
      BUILD_TIMEOUT_MS,
    );

    it(
      'stops a build when its template is deleted, and when the server shuts down',
      async () => {
        const caller = await ctx.createCaller();
        const start = (app: typeof ctx.app, name: string) =>
          app.inject({
            method: 'POST',
            url: '/v1/templates',
            headers: caller.headers,
            payload: { name, packages: [MISSING_PACKAGE, 'jq'] },
          });
        const doomed = (await start(ctx.app, 'doomed')).json();
        expect(doomed.status).toBe('building');
        const deleted = await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/templates/${doomed.id}`,
          headers: caller.headers,
        });
        expect(deleted.statusCode, deleted.body).toBe(204);
        expectError(await get(caller.headers)(`/v1/templates/${doomed.id}`), 'TEMPLATE_NOT_FOUND');
        const row = await ctx.store.db
          .selectFrom('templates')
          .selectAll()
          .where('id', '=', doomed.id)
          .executeTakeFirstOrThrow();
        expect(row).toMatchObject({ status: 'failed', error: 'cancelled: the template was deleted' });
        expect(row.deleted_at).not.toBeNull();

        // A second server on the same store: closing it stops its build and records why.
        const other = await buildApp({
          config: ctx.config,
          store: ctx.store,
          logger: pino({ level: 'silent' }),
          defaultMetrics: false,
          runtime: ctx.engine.runtime,
          templates: ctx.engine.templates,
        });
        await other.ready();
        const interrupted = (await start(other, 'interrupted')).json();
        await other.close();
        const after = (await get(caller.headers)(`/v1/templates/${interrupted.id}`)).json();
        expect(after).toMatchObject({ status: 'failed', error: 'interrupted by a shutdown' });
        expect(after.log).toContain('failed: interrupted by a shutdown');
      },
      BUILD_TIMEOUT_MS,
    );
  },
  { runtime: true },
);
