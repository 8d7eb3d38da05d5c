import { describe, expect, it } from 'vitest';
import { shellOk } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

/** The control plane restarting: sandboxes, background work and tracked processes survive. */
export function describeRestart(ctx: ConformanceContext): void {
  describe('restart survival', () => {
    it('a new runtime over the same state lists the sandbox, execs in it, and sees its processes', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('restart');
      await rt.create(spec);
      await shellOk(rt, spec.id, 'echo before > ~/f; nohup sleep 4242 >/dev/null 2>&1 &');
      const tracked = await rt.exec(spec.id, { command: 'sleep', args: ['4343'] });
      tracked.stdin.end();
      const second = await ctx.restart();
      const found = (await second.list()).find((s) => s.id === spec.id);
      expect(found?.state).toBe('running');
      expect(
        await shellOk(second, spec.id, 'cat ~/f; pgrep -fx "sleep 4242" >/dev/null && echo bg-alive'),
      ).toBe('before\nbg-alive\n');
      const listed = await second.processes(spec.id);
      expect(listed.map((p) => p.pid)).toContain(tracked.pid);
      await second.signal(spec.id, tracked.pid, 'SIGKILL');
      expect((await tracked.wait()).signal).toBe('SIGKILL');
    });
  });
}
