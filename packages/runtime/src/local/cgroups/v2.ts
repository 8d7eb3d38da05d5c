import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupDriver, CgroupLimits, CgroupUsage, SandboxCgroup } from './interface.js';
import { killPids, pollUntil, readNumber, readPids, removeCgroupDir, write } from './util.js';

const CONTROLLERS = ['memory', 'cpu', 'pids'];

/** cgroup v2 (unified): one directory `<root>/corral/<id>`. */
export function createCgroupV2Driver(root = '/sys/fs/cgroup'): CgroupDriver {
  const parent = join(root, 'corral');
  let prepared: Promise<void> | undefined;
  const prepare = async () => {
    await mkdir(parent, { recursive: true });
    const enable = CONTROLLERS.map((c) => `+${c}`).join(' ');
    await write(join(root, 'cgroup.subtree_control'), enable);
    await write(join(parent, 'cgroup.subtree_control'), enable);
  };
  return {
    version: 'v2',
    forSandbox: (id) => new CgroupV2(join(parent, id)),
    async create(id, limits) {
      prepared ??= prepare();
      await prepared;
      const cgroup = new CgroupV2(join(parent, id));
      await mkdir(cgroup.dir, { recursive: true });
      await cgroup.apply(limits);
      return cgroup;
    },
  };
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

class CgroupV2 implements SandboxCgroup {
  readonly procsFiles: string[];
  constructor(readonly dir: string) {
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  async apply(limits: CgroupLimits): Promise<void> {
    await write(join(this.dir, 'memory.max'), limits.memoryBytes);
    if (await exists(join(this.dir, 'memory.swap.max'))) await write(join(this.dir, 'memory.swap.max'), 0);
    await write(join(this.dir, 'cpu.max'), `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`);
    await write(join(this.dir, 'pids.max'), limits.pids);
  }

  async freeze(): Promise<void> {
    await write(join(this.dir, 'cgroup.freeze'), 1);
    await pollUntil(
      async () => /^frozen 1$/m.test(await readFile(join(this.dir, 'cgroup.events'), 'utf8')),
      10_000,
      'cgroup.freeze',
    );
  }

  async thaw(): Promise<void> {
    await write(join(this.dir, 'cgroup.freeze'), 0).catch(() => undefined);
  }

  pids(): Promise<number[]> {
    return readPids(join(this.dir, 'cgroup.procs'));
  }

  async killAll(): Promise<void> {
    if (await exists(join(this.dir, 'cgroup.kill'))) await write(join(this.dir, 'cgroup.kill'), 1);
    else {
      await this.freeze();
      killPids(await this.pids());
      await this.thaw();
    }
    await pollUntil(async () => (await this.pids()).length === 0, 10_000, 'sandbox processes to exit');
  }

  async usage(): Promise<CgroupUsage> {
    const cpuStat = await readFile(join(this.dir, 'cpu.stat'), 'utf8').catch(() => '');
    const usageUsec = Number(/^usage_usec (\d+)$/m.exec(cpuStat)?.[1] ?? 0);
    const memoryBytes = await readNumber(join(this.dir, 'memory.current'));
    const peak = (await exists(join(this.dir, 'memory.peak')))
      ? await readNumber(join(this.dir, 'memory.peak'))
      : memoryBytes;
    return {
      cpuSeconds: usageUsec / 1e6,
      memoryBytes,
      memoryPeakBytes: peak,
      pids: await readNumber(join(this.dir, 'pids.current')),
    };
  }

  async remove(): Promise<void> {
    await removeCgroupDir(this.dir);
  }
}
