import { describe, expect, it } from 'vitest';
import { shell, shellOk, waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

// perl-base is in every Debian template: fork until refused, report how many children we got.
const FORK_BOMB =
  '$| = 1; my @kids; for (1..400) { my $p = fork; last unless defined $p; if (!$p) { sleep 60; exit 0 } push @kids, $p } print scalar(@kids), "\\n"; kill 9, @kids;';

/** Resource limits: memory (OOM inside, neighbour unaffected), pids, CPU quota. */
export function describeLimits(ctx: ConformanceContext): void {
  describe('limits', () => {
    it('contains a memory bomb (as the driver declares) while a neighbour keeps working', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('mem', { resources: { cpu: 1, memoryMb: 128, diskMb: 512, pids: 256 } });
      await rt.create(spec);
      const bomb = shell(
        rt,
        spec.id,
        'perl -e "\\$x = \\"a\\" x (1024 ** 3); print length \\$x"; echo "status=$?"',
      );
      if (rt.features.oomScope === 'process') {
        // The kernel kills the offending process inside; the sandbox keeps running.
        expect((await bomb).stdout).toBe('status=137\n');
        // The peak shows the bomb grew to the limit and no further.
        const stats = await rt.stats(spec.id);
        expect(stats.memoryPeakBytes).toBeGreaterThan(64 * 1024 * 1024);
        expect(stats.memoryPeakBytes).toBeLessThanOrEqual(129 * 1024 * 1024);
      } else {
        // The whole sandbox is stopped, its filesystem kept; start() brings it back.
        await bomb.catch(() => undefined);
        await waitFor('the sandbox to stop', async () =>
          (await rt.get(spec.id))?.state === 'stopped' ? true : undefined,
        );
        await rt.start(spec.id);
      }
      expect((await shellOk(rt, spec.id, 'echo alive')).trim()).toBe('alive');
      expect((await shellOk(rt, ctx.sharedSandbox(), 'echo neighbour')).trim()).toBe('neighbour');
    });

    it('caps the number of processes (fork bomb)', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('pids', { resources: { cpu: 1, memoryMb: 512, diskMb: 512, pids: 64 } });
      await rt.create(spec);
      const out = await shell(rt, spec.id, `perl -e '${FORK_BOMB}'`);
      const forked = Number(out.stdout.trim());
      expect(forked).toBeGreaterThan(10);
      expect(forked).toBeLessThan(64);
      expect((await shellOk(rt, spec.id, 'echo alive')).trim()).toBe('alive');
    });

    it('enforces the CPU quota', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('cpu', { resources: { cpu: 0.25, memoryMb: 256, diskMb: 512, pids: 64 } });
      await rt.create(spec);
      const before = (await rt.stats(spec.id)).cpuSeconds;
      const started = Date.now();
      await shellOk(rt, spec.id, 'spin() { while [ $SECONDS -lt 2 ]; do :; done; }; spin & spin & wait');
      const wallSeconds = (Date.now() - started) / 1000;
      const used = (await rt.stats(spec.id)).cpuSeconds - before;
      // Two busy loops for ~2 s would use ~4 CPU-seconds unthrottled; the quota allows 0.25/s.
      expect(used).toBeGreaterThan(0.1);
      expect(used).toBeLessThan(0.25 * wallSeconds * 1.5 + 0.2);
    });
  });
}
