// Memory per idle sandbox: host MemAvailable delta, the processes' RSS/PSS and the cgroups' usage.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { benchSpec, execOnce } from './runtime-corral.mjs';
import { quantile, round, row, timed } from './runtime-measure.mjs';

const MIB = 2 ** 20;

/** /proc/meminfo fields in bytes. */
async function meminfo() {
  const out = {};
  for (const line of (await readFile('/proc/meminfo', 'utf8')).split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)\s*kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

/** Cgroup parents of the drivers: the local driver's, and the gvisor driver's default. */
const CGROUP_PARENTS = ['corral', 'corral-gvisor'];

/**
 * Host pids in the sandbox's cgroup (v1 pids controller, or the v2 directory), whichever driver
 * made it: named after the id, or `<instance tag>-<id>` (the gvisor driver's container ids).
 */
async function cgroupPids(id) {
  const root = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/pids';
  const pids = new Set();
  for (const parent of CGROUP_PARENTS) {
    const names = await readdir(`${root}/${parent}`).catch(() => []);
    for (const name of names.filter((n) => n === id || n.endsWith(`-${id}`))) {
      const text = await readFile(`${root}/${parent}/${name}/cgroup.procs`, 'utf8').catch(() => '');
      for (const pid of text.split('\n').filter(Boolean)) pids.add(Number(pid));
    }
  }
  return [...pids];
}

/** Rss and Pss of one process in bytes (0 when it is gone). */
async function rollup(pid) {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: field('Rss'), pss: field('Pss') };
}

const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Create `count` idle sandboxes (each proven alive by one exec), measure, then destroy them all.
 * Three readings of the per-sandbox cost: the host's MemAvailable drop (host-wide, so other work
 * on the machine shows up in it), what destroying them gave back, and the attributable sum
 * (kernel objects + the processes' PSS). The fit extrapolation uses the largest positive one.
 */
export async function memoryRows({ runtime, label, count, idPrefix, log, spec = benchSpec }) {
  const ids = [];
  const before = await meminfo();
  let idle;
  let usage;
  let createMs = 0;
  let destroyMs = 0;
  let destroyFailures = [];
  const createTimes = [];
  try {
    [createMs] = await timed(async () => {
      for (let i = 0; i < count; i++) {
        const id = `${idPrefix}-idle${i}`;
        ids.push(id);
        const [ms] = await timed(async () => {
          await runtime.create(spec(id));
          await execOnce(runtime, id, 'true');
        });
        createTimes.push(ms);
        if ((i + 1) % 100 === 0) log(`${label}: ${i + 1}/${count} idle sandboxes up`);
      }
    });
    await settle(SETTLE_MS);
    idle = await meminfo();
    usage = await processUsage(runtime, ids);
  } finally {
    [destroyMs, destroyFailures] = await timed(() => destroyAll(runtime, ids));
    log(`${label}: destroyed ${ids.length} idle sandboxes in ${(destroyMs / 1000).toFixed(1)} s`);
  }
  await settle(SETTLE_MS);
  const leaked = await leftovers(ids);
  const final = await meminfo();
  const each = (bytes) => bytes / count / MIB;
  const hostDrop = each(before.MemAvailable - idle.MemAvailable);
  const regained = each(final.MemAvailable - idle.MemAvailable);
  const kernelFields = ['Slab', 'Percpu', 'KernelStack', 'PageTables'];
  const kernel = kernelFields.reduce((sum, f) => sum + each(idle[f] - before[f]), 0);
  // The cgroup's charge can exceed the PSS (page cache the sandbox touched): count the larger.
  const attributable = kernel + each(Math.max(usage.pss, usage.cgroupBytes));
  const estimate = Math.max(attributable, regained, hostDrop);
  const used =
    estimate === hostDrop
      ? 'MemAvailable drop'
      : estimate === regained
        ? 'regained on destroy'
        : 'kernel objects + max(PSS, cgroup usage)';
  const kernelNote = kernelFields.map((f) => `${f} ${each(idle[f] - before[f]).toFixed(2)}`).join(', ');
  const setup = `${count} idle sandboxes (${usage.processes} processes), created in ${(createMs / 1000).toFixed(1)} s`;
  const failure = destroyFailures[0]
    ? `; first failure: ${destroyFailures[0].id}: ${destroyFailures[0].message}`
    : '';
  const leakNote = `destroy() rejected ${destroyFailures.length}; still holding processes 3 s after destroy: ${leaked.slice(0, 5).join(', ') || 'none'}${failure}`;
  return [
    row(
      `${label}: idle sandboxes not cleaned up by destroy()`,
      new Set([...destroyFailures.map((f) => f.id), ...leaked]).size,
      'sandboxes',
      '0',
      leakNote,
    ),
    ...scaleRows(label, createTimes, destroyMs),
    row(`${label}: memory per idle sandbox (largest reading)`, estimate, 'MiB', '≤ 5', `${used}; ${setup}`),
    row(
      `${label}:   host MemAvailable drop`,
      hostDrop,
      'MiB',
      '',
      'host-wide: other work on the machine shows up here (can even be negative)',
    ),
    row(
      `${label}:   host MemAvailable regained on destroy`,
      regained,
      'MiB',
      '',
      'the same cost read the other way',
    ),
    row(
      `${label}:   kernel objects (Slab+Percpu+KernelStack+PageTables Δ)`,
      kernel,
      'MiB',
      '',
      `MiB each: ${kernelNote}`,
    ),
    row(
      `${label}:   sandbox processes PSS`,
      each(usage.pss),
      'MiB',
      '',
      `RSS ${each(usage.rss).toFixed(2)} MiB`,
    ),
    row(
      `${label}:   cgroup memory usage`,
      each(usage.cgroupBytes),
      'MiB',
      '',
      'memory.usage_in_bytes / memory.current (charged page cache included)',
    ),
    row(
      `${label}: idle sandboxes that fit (extrapolated)`,
      Math.floor(before.MemAvailable / MIB / estimate),
      'sandboxes',
      '≥ 1000',
      `MemAvailable before ${(before.MemAvailable / 2 ** 30).toFixed(1)} GiB ÷ the largest reading; no per-sandbox user processes`,
    ),
  ];
}

const SETTLE_MS = 3000;
const WINDOW = 100;

/** Does create slow down as sandboxes pile up? The first and the last WINDOW creates, and the mass destroy. */
function scaleRows(label, createTimes, destroyMs) {
  const count = createTimes.length;
  if (count < 2 * WINDOW) return [];
  const first = createTimes.slice(0, WINDOW);
  const last = createTimes.slice(-WINDOW);
  return [
    row(
      `${label}: create → first exec p50, 0–${WINDOW} sandboxes present`,
      quantile(first, 0.5),
      'ms',
      '',
      `p99 ${round(quantile(first, 0.99))} ms`,
    ),
    row(
      `${label}: create → first exec p50, ${count - WINDOW}–${count} present`,
      quantile(last, 0.5),
      'ms',
      '',
      `p99 ${round(quantile(last, 0.99))} ms`,
    ),
    row(
      `${label}: destroy ${count} sandboxes (4 at a time), per sandbox`,
      destroyMs / count,
      'ms',
      '',
      `${(destroyMs / 1000).toFixed(1)} s in all`,
    ),
  ];
}

/** Sum of RSS/PSS over every process in the sandboxes' cgroups, and of the cgroups' memory usage. */
async function processUsage(runtime, ids) {
  const usage = { rss: 0, pss: 0, processes: 0, cgroupBytes: 0 };
  for (const id of ids) {
    for (const pid of await cgroupPids(id)) {
      const r = await rollup(pid);
      usage.rss += r.rss;
      usage.pss += r.pss;
      usage.processes++;
    }
    usage.cgroupBytes += (await runtime.stats(id)).memoryBytes;
  }
  return usage;
}

/**
 * Destroy sandboxes a few at a time, then once more one by one for any that failed; resolves
 * with what still failed ({ id, message }), never throws.
 */
export async function destroyAll(runtime, ids, concurrency = 4) {
  const queue = [...ids];
  const failed = [];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      await runtime.destroy(id).catch(() => failed.push(id));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const still = [];
  for (const id of failed) {
    await runtime.destroy(id).catch((err) => still.push({ id, message: err.message }));
  }
  return still;
}

/** Sandboxes whose cgroup still holds processes after destroy() resolved: leaks, not figures. */
export async function leftovers(ids) {
  const out = [];
  for (const id of ids) if ((await cgroupPids(id)).length > 0) out.push(id);
  return out;
}
