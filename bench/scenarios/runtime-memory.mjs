// Memory per idle sandbox: host MemAvailable delta, the processes' RSS/PSS and the cgroups' usage.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { benchSpec, execOnce } from './runtime-corral.mjs';
import { row, timed } from './runtime-measure.mjs';

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

/** Host pids in the sandbox's cgroup (v1 pids controller, or the v2 directory). */
async function cgroupPids(id) {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const file = v2
    ? `/sys/fs/cgroup/corral/${id}/cgroup.procs`
    : `/sys/fs/cgroup/pids/corral/${id}/cgroup.procs`;
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
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
 * The MemAvailable delta is host-wide: other work on the machine shows up in it (see the note).
 */
export async function memoryRows({ runtime, label, count, idPrefix, log }) {
  const ids = [];
  const before = await meminfo();
  let after;
  const rows = [];
  try {
    const [createMs] = await timed(async () => {
      for (let i = 0; i < count; i++) {
        const id = `${idPrefix}-idle${i}`;
        ids.push(id);
        await runtime.create(benchSpec(id));
        await execOnce(runtime, id, 'true');
        if ((i + 1) % 100 === 0) log(`${label}: ${i + 1}/${count} idle sandboxes up`);
      }
    });
    await settle(SETTLE_MS);
    after = await meminfo();
    const usage = await processUsage(runtime, ids);
    const per = (field) => (before[field] - after[field]) / count / MIB;
    const grew = (field) => -per(field);
    const perSandbox = per('MemAvailable');
    const kernel = ['Slab', 'Percpu', 'KernelStack', 'PageTables']
      .map((f) => `${f} ${grew(f).toFixed(2)}`)
      .join(', ');
    const base = `${count} idle sandboxes (${usage.processes} processes), created in ${(createMs / 1000).toFixed(1)} s`;
    rows.push(
      row(
        `${label}: host memory per idle sandbox (MemAvailable Δ)`,
        perSandbox,
        'MiB',
        '≤ 5',
        `${base}; host-wide: other work on the machine shows up here`,
      ),
      row(
        `${label}:   of which kernel (Slab+Percpu+KernelStack+PageTables Δ)`,
        grew('Slab') + grew('Percpu') + grew('KernelStack') + grew('PageTables'),
        'MiB',
        '',
        `MiB each: ${kernel}`,
      ),
      row(
        `${label}:   sandbox processes PSS`,
        usage.pss / count / MIB,
        'MiB',
        '',
        `RSS ${(usage.rss / count / MIB).toFixed(2)} MiB`,
      ),
      row(
        `${label}:   cgroup memory usage`,
        usage.cgroupBytes / count / MIB,
        'MiB',
        '',
        'memory.usage_in_bytes / memory.current (charged page cache included)',
      ),
      row(
        `${label}: idle sandboxes that fit (extrapolated)`,
        Math.floor(before.MemAvailable / Math.max(perSandbox * MIB, 1)),
        'sandboxes',
        '≥ 1000',
        `MemAvailable before ${(before.MemAvailable / 2 ** 30).toFixed(1)} GiB ÷ per-sandbox Δ`,
      ),
    );
  } finally {
    const [destroyMs] = await timed(() => destroyAll(runtime, ids));
    log(`${label}: destroyed ${ids.length} idle sandboxes in ${(destroyMs / 1000).toFixed(1)} s`);
  }
  // A second reading of the same cost: what destroying them gave back.
  await settle(SETTLE_MS);
  const final = await meminfo();
  rows.push(
    row(
      `${label}: host memory regained per destroyed sandbox`,
      (final.MemAvailable - after.MemAvailable) / count / MIB,
      'MiB',
      '',
      'MemAvailable after destroy − with them idle; a cross-check of the Δ above',
    ),
  );
  return rows;
}

const SETTLE_MS = 3000;

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

/** Destroy sandboxes a few at a time; failures are logged by the caller's later checks, not thrown. */
export async function destroyAll(runtime, ids, concurrency = 4) {
  const queue = [...ids];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      await runtime.destroy(id).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
