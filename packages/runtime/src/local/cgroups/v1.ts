import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupDriver, CgroupLimits, CgroupUsage, SandboxCgroup } from './interface.js';
import { killPids, pollUntil, readNumber, readPids, readText, removeCgroupDir, write } from './util.js';

/** The v1 controllers a sandbox uses; each is its own hierarchy under `root`. */
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'] as const;
type Controller = (typeof V1_CONTROLLERS)[number];

/** cgroup v1: one directory per controller at `<root>/<controller>/corral/<id>`. */
export function createCgroupV1Driver(root = '/sys/fs/cgroup'): CgroupDriver {
  return {
    version: 'v1',
    forSandbox: (id) => new CgroupV1(root, id),
    async create(id, limits) {
      const cgroup = new CgroupV1(root, id);
      await cgroup.make();
      await cgroup.apply(limits);
      return cgroup;
    },
  };
}

class CgroupV1 implements SandboxCgroup {
  readonly dirs: Record<Controller, string>;
  readonly procsFiles: string[];

  constructor(root: string, id: string) {
    this.dirs = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, join(root, c, 'corral', id)])) as Record<
      Controller,
      string
    >;
    // cpu and cpuacct are often one hierarchy (cpu,cpuacct); joining it twice is harmless.
    this.procsFiles = V1_CONTROLLERS.map((c) => join(this.dirs[c], 'cgroup.procs'));
  }

  async make(): Promise<void> {
    for (const c of V1_CONTROLLERS) await mkdir(this.dirs[c], { recursive: true });
  }

  async apply(limits: CgroupLimits): Promise<void> {
    const mem = this.dirs.memory;
    const memsw = join(mem, 'memory.memsw.limit_in_bytes');
    const hasMemsw = await access(memsw).then(
      () => true,
      () => false,
    );
    // memsw must stay >= limit: raise it first when growing, set it after when shrinking.
    const current = await readNumber(join(mem, 'memory.limit_in_bytes'));
    if (hasMemsw && limits.memoryBytes > current) await write(memsw, limits.memoryBytes);
    await write(join(mem, 'memory.limit_in_bytes'), limits.memoryBytes);
    if (hasMemsw) await write(memsw, limits.memoryBytes);
    await write(join(this.dirs.cpu, 'cpu.cfs_period_us'), limits.cpuPeriodUs);
    await write(join(this.dirs.cpu, 'cpu.cfs_quota_us'), limits.cpuQuotaUs);
    await write(join(this.dirs.pids, 'pids.max'), limits.pids);
  }

  async freeze(): Promise<void> {
    const state = join(this.dirs.freezer, 'freezer.state');
    await write(state, 'FROZEN');
    await pollUntil(async () => (await readText(state)) === 'FROZEN', 10_000, 'freezer FROZEN');
  }

  async thaw(): Promise<void> {
    const state = join(this.dirs.freezer, 'freezer.state');
    try {
      await write(state, 'THAWED');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
  }

  pids(): Promise<number[]> {
    return readPids(join(this.dirs.freezer, 'cgroup.procs'));
  }

  async killAll(): Promise<void> {
    // Freeze first so nothing can fork while we kill (the v1 answer to cgroup.kill).
    const frozen = await this.freeze().then(
      () => true,
      () => false,
    );
    killPids(await this.pids());
    if (frozen) await this.thaw();
    await pollUntil(async () => (await this.pids()).length === 0, 10_000, 'sandbox processes to exit').catch(
      async () => {
        killPids(await this.pids());
      },
    );
  }

  async usage(): Promise<CgroupUsage> {
    const [cpuNs, mem, peak, pids] = await Promise.all([
      readNumber(join(this.dirs.cpuacct, 'cpuacct.usage')),
      readNumber(join(this.dirs.memory, 'memory.usage_in_bytes')),
      readNumber(join(this.dirs.memory, 'memory.max_usage_in_bytes')),
      readNumber(join(this.dirs.pids, 'pids.current')),
    ]);
    return { cpuSeconds: cpuNs / 1e9, memoryBytes: mem, memoryPeakBytes: peak, pids };
  }

  async remove(): Promise<void> {
    for (const c of V1_CONTROLLERS) await removeCgroupDir(this.dirs[c]);
  }
}
