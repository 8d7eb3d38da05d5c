import { describe, expect, it } from 'vitest';
import { shell, shellOk } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? String(err),
  );

/** create/get/list/pause/resume/stop/start/hibernate/destroy and their error codes. */
export function describeLifecycle(ctx: ConformanceContext): void {
  describe('lifecycle', () => {
    it('creates, reports and lists a running sandbox; rejects a duplicate id', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('life-a', { metadata: { owner: 'x' } });
      const info = await rt.create(spec);
      expect(info).toMatchObject({
        id: spec.id,
        state: 'running',
        template: 'base',
        metadata: { owner: 'x' },
      });
      expect(info.resources).toEqual(spec.resources);
      expect(Number.isNaN(Date.parse(info.createdAt))).toBe(false);
      expect((await rt.get(spec.id))?.state).toBe('running');
      expect((await rt.list()).map((s) => s.id)).toContain(spec.id);
      expect(await codeOf(rt.create(spec))).toBe('SANDBOX_EXISTS');
      expect((await shellOk(rt, spec.id, 'echo ready')).trim()).toBe('ready');
    });

    it('reports unknown ids as SANDBOX_NOT_FOUND (get → null, destroy idempotent)', async () => {
      const rt = ctx.runtime();
      const id = ctx.spec('missing').id;
      expect(await rt.get(id)).toBeNull();
      expect(await codeOf(rt.exec(id, { command: 'true' }))).toBe('SANDBOX_NOT_FOUND');
      expect(await codeOf(rt.stop(id))).toBe('SANDBOX_NOT_FOUND');
      expect(await codeOf(rt.pause(id))).toBe('SANDBOX_NOT_FOUND');
      expect(await codeOf(rt.stats(id))).toBe('SANDBOX_NOT_FOUND');
      await rt.destroy(id);
    });

    it('rejects a bad spec with INVALID_ARGUMENT and an unknown template with TEMPLATE_NOT_FOUND', async () => {
      const rt = ctx.runtime();
      expect(await codeOf(rt.create({ ...ctx.spec('bad'), id: 'no/slashes' }))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(rt.create(ctx.spec('notpl', { template: 'no-such-template-xyz' })))).toBe(
        'TEMPLATE_NOT_FOUND',
      );
      expect(await rt.get(ctx.spec('notpl').id)).toBeNull();
    });

    it('pauses (exec refused) and resumes', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('life-pause');
      await rt.create(spec);
      expect((await rt.pause(spec.id)).state).toBe('paused');
      expect(await codeOf(rt.exec(spec.id, { command: 'true' }))).toBe('INVALID_STATE');
      expect(await codeOf(rt.pause(spec.id))).toBe('INVALID_STATE');
      expect((await rt.get(spec.id))?.state).toBe('paused');
      expect((await rt.resume(spec.id)).state).toBe('running');
      expect((await shell(rt, spec.id, 'true')).exitCode).toBe(0);
    });

    it('stops (processes gone, files kept) and starts again', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('life-stop');
      await rt.create(spec);
      await shellOk(rt, spec.id, 'echo kept > ~/kept.txt; nohup sleep 1000 >/dev/null 2>&1 &');
      expect((await rt.stop(spec.id)).state).toBe('stopped');
      expect(await codeOf(rt.stop(spec.id))).toBe('INVALID_STATE');
      expect(await codeOf(rt.exec(spec.id, { command: 'true' }))).toBe('INVALID_STATE');
      expect((await rt.start(spec.id)).state).toBe('running');
      expect(await codeOf(rt.start(spec.id))).toBe('INVALID_STATE');
      expect(await shellOk(rt, spec.id, 'cat ~/kept.txt; pgrep -x sleep || echo no-sleep')).toBe(
        'kept\nno-sleep\n',
      );
    });

    it('hibernates (filesystem kept) and resumes from hibernation', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('life-hib');
      await rt.create(spec);
      await shellOk(rt, spec.id, 'echo warm > ~/state.txt');
      expect((await rt.hibernate(spec.id)).state).toBe('hibernated');
      expect(await codeOf(rt.exec(spec.id, { command: 'true' }))).toBe('INVALID_STATE');
      expect((await rt.resume(spec.id)).state).toBe('running');
      expect(await shellOk(rt, spec.id, 'cat ~/state.txt')).toBe('warm\n');
    });

    it('replaces the network policy of a running sandbox', async () => {
      const rt = ctx.runtime();
      const id = ctx.sharedSandbox();
      await rt.setNetwork(id, { mode: 'allowlist', allow: ['example.com'] });
      expect((await rt.get(id))?.network).toEqual({ mode: 'allowlist', allow: ['example.com'] });
      await rt.setNetwork(id, { mode: 'none' });
      expect((await rt.get(id))?.network).toEqual({ mode: 'none' });
      expect(await codeOf(rt.setNetwork(ctx.spec('missing-net').id, { mode: 'none' }))).toBe(
        'SANDBOX_NOT_FOUND',
      );
    });

    it('destroys a sandbox in any state, idempotently', async () => {
      const rt = ctx.runtime();
      for (const [name, prepare] of [
        ['d-run', async () => undefined],
        ['d-pause', (id: string) => rt.pause(id)],
        ['d-stop', (id: string) => rt.stop(id)],
      ] as const) {
        const spec = ctx.spec(name);
        await rt.create(spec);
        await prepare(spec.id);
        await rt.destroy(spec.id);
        expect(await rt.get(spec.id)).toBeNull();
        await rt.destroy(spec.id);
        expect((await rt.list()).map((s) => s.id)).not.toContain(spec.id);
      }
    });
  });
}
