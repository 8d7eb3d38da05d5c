import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectCgroupDriver } from '../src/local/cgroups/index.js';

// Both backends against a directory laid out like cgroupfs (plain files): this host is hybrid v1,
// so the v2 backend's file names and values are checked here rather than on a real kernel.
const limits = { memoryBytes: 256 * 1024 * 1024, cpuQuotaUs: 50_000, cpuPeriodUs: 100_000, pids: 64 };

describe('cgroup backends (fake cgroupfs)', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');

  it('detects pure v2 and writes memory.max, swap, cpu.max, pids.max; freezes; reads usage', async () => {
    root = mkdtempSync(join(tmpdir(), 'fake-cg2-'));
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory pids');
    writeFileSync(join(root, 'cgroup.subtree_control'), '');
    const driver = detectCgroupDriver(root);
    expect(driver.version).toBe('v2');
    const dir = join(root, 'corral', 'sbx');
    mkdirSync(dir, { recursive: true });
    for (const f of ['memory.swap.max', 'cgroup.procs', 'cgroup.kill', 'memory.peak'])
      writeFileSync(join(dir, f), '');
    writeFileSync(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
    writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\n');
    writeFileSync(join(dir, 'memory.current'), '1048576');
    writeFileSync(join(dir, 'pids.current'), '3');
    const cgroup = await driver.create('sbx', limits);
    expect(read('corral', 'cgroup.subtree_control')).toBe('+memory +cpu +pids');
    expect(read('corral', 'sbx', 'memory.max')).toBe(String(limits.memoryBytes));
    expect(read('corral', 'sbx', 'memory.swap.max')).toBe('0');
    expect(read('corral', 'sbx', 'cpu.max')).toBe('50000 100000');
    expect(read('corral', 'sbx', 'pids.max')).toBe('64');
    expect(cgroup.procsFiles).toEqual([join(dir, 'cgroup.procs')]);
    await cgroup.freeze();
    expect(read('corral', 'sbx', 'cgroup.freeze')).toBe('1');
    await cgroup.thaw();
    expect(read('corral', 'sbx', 'cgroup.freeze')).toBe('0');
    await cgroup.killAll();
    expect(read('corral', 'sbx', 'cgroup.kill')).toBe('1');
    writeFileSync(join(dir, 'memory.peak'), '2097152');
    expect(await cgroup.usage()).toEqual({
      cpuSeconds: 2.5,
      memoryBytes: 1048576,
      memoryPeakBytes: 2097152,
      pids: 3,
    });
  });

  it('detects v1 and writes memory (with memsw), cfs quota and pids.max per controller', async () => {
    root = mkdtempSync(join(tmpdir(), 'fake-cg1-'));
    for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'freezer']) {
      mkdirSync(join(root, c, 'corral', 'sbx'), { recursive: true });
      writeFileSync(join(root, c, 'cgroup.procs'), '');
    }
    writeFileSync(join(root, 'memory', 'corral', 'sbx', 'memory.memsw.limit_in_bytes'), '');
    writeFileSync(join(root, 'memory', 'corral', 'sbx', 'memory.limit_in_bytes'), '9223372036854771712');
    writeFileSync(join(root, 'freezer', 'corral', 'sbx', 'freezer.state'), 'FROZEN');
    const driver = detectCgroupDriver(root);
    expect(driver.version).toBe('v1');
    const cgroup = await driver.create('sbx', limits);
    expect(read('memory', 'corral', 'sbx', 'memory.limit_in_bytes')).toBe(String(limits.memoryBytes));
    expect(read('memory', 'corral', 'sbx', 'memory.memsw.limit_in_bytes')).toBe(String(limits.memoryBytes));
    expect(read('cpu', 'corral', 'sbx', 'cpu.cfs_quota_us')).toBe('50000');
    expect(read('cpu', 'corral', 'sbx', 'cpu.cfs_period_us')).toBe('100000');
    expect(read('pids', 'corral', 'sbx', 'pids.max')).toBe('64');
    expect(cgroup.procsFiles).toHaveLength(5);
    await cgroup.freeze();
    expect(read('freezer', 'corral', 'sbx', 'freezer.state')).toBe('FROZEN');
  });

  it('names the missing v1 controllers', () => {
    root = mkdtempSync(join(tmpdir(), 'fake-cg0-'));
    mkdirSync(join(root, 'memory'));
    writeFileSync(join(root, 'memory', 'cgroup.procs'), '');
    expect(() => detectCgroupDriver(root)).toThrow(/cpu, cpuacct, pids, freezer/);
  });
});
