import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RuntimeError } from '../../src/errors.js';
import type { Runtime } from '../../src/interface.js';
import { shell, shellOk, waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

// Holds a 200 MiB string: fits in 512 MiB, not in 128 MiB (perl-base is in every Debian template).
const ALLOC_200M = 'perl -e "\\$x = \\"a\\" x (200 * 1024 ** 2); print length \\$x"; echo " status=$?"';
const FITS = `${200 * 1024 ** 2} status=0\n`;

/**
 * Run the 200 MiB allocation and say whether the memory limit stopped it, as the driver
 * declares: the process OOM-killed inside, or the whole sandbox stopped (then started again).
 */
async function allocationKilled(rt: Runtime, id: string): Promise<boolean> {
  const result = shell(rt, id, ALLOC_200M);
  if (rt.features.oomScope === 'process') {
    const { stdout } = await result;
    if (stdout === FITS) return false;
    expect(stdout).toBe(' status=137\n');
    return true;
  }
  const outcome = await result.then(
    (r) => r.stdout,
    () => null,
  );
  if (outcome === FITS) return false;
  await waitFor('the sandbox to stop', async () =>
    (await rt.get(id))?.state === 'stopped' ? true : undefined,
  );
  await rt.start(id);
  return true;
}

/** setResources: live limits, kept in get() and across stop/start; the disk cap is fixed. */
export function describeResources(ctx: ConformanceContext): void {
  describe('setResources', () => {
    it('applies a new memory limit at once, shows it in get(), and keeps it across stop/start', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('setres', { resources: { cpu: 1, memoryMb: 512, diskMb: 512, pids: 256 } });
      await rt.create(spec);
      // Lowered while idle: gVisor's sentry keeps memory it once used, so after an allocation
      // the kernel could refuse the lower limit (see the next case).
      const lower = { cpu: 0.5, memoryMb: 128, diskMb: 512, pids: 128 };
      const info = await rt.setResources(spec.id, lower);
      expect(info.state).toBe('running');
      expect(info.resources).toEqual(lower);
      expect((await rt.get(spec.id))?.resources).toEqual(lower);
      expect(await allocationKilled(rt, spec.id)).toBe(true);

      await rt.stop(spec.id);
      await rt.start(spec.id);
      expect((await rt.get(spec.id))?.resources).toEqual(lower);
      expect(await allocationKilled(rt, spec.id)).toBe(true);

      // Raising it again works live too: now it fits.
      await rt.setResources(spec.id, { ...lower, memoryMb: 512 });
      expect(await allocationKilled(rt, spec.id)).toBe(false);
      expect((await shellOk(rt, spec.id, 'echo alive')).trim()).toBe('alive');
    });

    it('keeps new resources for the next boot of a stopped sandbox and applies them to a paused one', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('setres-off', { resources: { cpu: 1, memoryMb: 512, diskMb: 512, pids: 256 } });
      await rt.create(spec);
      await rt.stop(spec.id);
      const lower = { cpu: 1, memoryMb: 128, diskMb: 512, pids: 256 };
      expect((await rt.setResources(spec.id, lower)).state).toBe('stopped');
      await rt.start(spec.id);
      expect((await rt.get(spec.id))?.resources).toEqual(lower);
      expect(await allocationKilled(rt, spec.id)).toBe(true);

      await rt.pause(spec.id);
      const higher = { ...lower, memoryMb: 512 };
      expect((await rt.setResources(spec.id, higher)).state).toBe('paused');
      await rt.resume(spec.id);
      expect((await rt.get(spec.id))?.resources).toEqual(higher);
      expect(await allocationKilled(rt, spec.id)).toBe(false);
    });

    it('memory below what the sandbox holds now: refused on cgroup v1, nothing changed', async () => {
      const rt = ctx.runtime();
      const resources = { cpu: 1, memoryMb: 512, diskMb: 512, pids: 256 };
      const spec = ctx.spec('setres-busy', { resources });
      await rt.create(spec);
      // A detached process holding 100 MiB or more of anonymous memory (no swap: nothing to reclaim).
      await shellOk(
        rt,
        spec.id,
        `nohup perl -e '$x = "a" x (100 * 1024 ** 2); open F, ">/tmp/held"; close F; sleep 600' >/dev/null 2>&1 &`,
      );
      await waitFor('the memory to be held', async () =>
        (await shell(rt, spec.id, 'test -e /tmp/held')).exitCode === 0 ? true : undefined,
      );
      const lower = { ...resources, memoryMb: 64 };
      if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
        // cgroup v2 reclaims, then OOM-kills as features.oomScope says, and keeps the new limit.
        await rt.setResources(spec.id, lower);
        expect((await rt.get(spec.id))?.resources).toEqual(lower);
        return;
      }
      const err = await rt.setResources(spec.id, lower).catch((e) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).code).toBe('INVALID_ARGUMENT');
      expect(await rt.get(spec.id)).toMatchObject({ state: 'running', resources });
      expect((await shellOk(rt, spec.id, 'test -e /tmp/held && echo alive')).trim()).toBe('alive');
    });

    it('refuses a disk size change (UNSUPPORTED) and bad values (INVALID_ARGUMENT), changing nothing', async () => {
      const rt = ctx.runtime();
      const id = ctx.sharedSandbox();
      const before = (await rt.get(id))?.resources;
      if (!before) throw new Error('shared sandbox missing');
      const disk = await rt.setResources(id, { ...before, diskMb: before.diskMb * 2 }).catch((e) => e);
      expect(disk).toBeInstanceOf(RuntimeError);
      expect((disk as RuntimeError).code).toBe('UNSUPPORTED');
      const bad = await rt.setResources(id, { ...before, cpu: 0 }).catch((e) => e);
      expect((bad as RuntimeError).code).toBe('INVALID_ARGUMENT');
      const missing = await rt.setResources('cf-no-such-sandbox', before).catch((e) => e);
      expect((missing as RuntimeError).code).toBe('SANDBOX_NOT_FOUND');
      expect((await rt.get(id))?.resources).toEqual(before);
      expect((await rt.get(id))?.state).toBe('running');
    });
  });
}
