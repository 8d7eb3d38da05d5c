// Corral's own figures for one runtime (local or gvisor): create → first exec, exec round trip,
// snapshot + restore of a 100 MiB workspace.
import { join } from 'node:path';
import { percentileRows, row, sample, timed } from './runtime-measure.mjs';

/** A sandbox spec for the benchmark: base template, modest limits, internet egress policy. */
export function benchSpec(id, overrides = {}) {
  return {
    id,
    template: 'base',
    resources: { cpu: 1, memoryMb: 512, diskMb: 0, pids: 512 },
    env: {},
    network: { mode: 'internet' },
    metadata: { bench: 'runtime' },
    ...overrides,
  };
}

/** Run `command` in the sandbox to completion; resolves with { exitCode, stdout }. */
export async function execOnce(runtime, id, command, args = [], options = {}) {
  const proc = await runtime.exec(id, { command, args, ...options });
  proc.stdin.end();
  let stdout = '';
  proc.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  proc.stderr.resume();
  const status = await proc.wait();
  if (status.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} exited ${status.exitCode}`);
  return { exitCode: status.exitCode, stdout };
}

/**
 * Create → first `true` result, n times (each sandbox destroyed right after, untimed), with the
 * split between create() and the first exec, and destroy() on its own.
 */
export async function createRows({ runtime, label, n, idPrefix, spec = benchSpec, goals = true }) {
  const total = [];
  const createOnly = [];
  const firstExec = [];
  const destroys = [];
  let i = 0;
  const once = async () => {
    const id = `${idPrefix}-c${i++}`;
    try {
      const [createMs] = await timed(() => runtime.create(spec(id)));
      const [execMs] = await timed(() => execOnce(runtime, id, 'true'));
      createOnly.push(createMs);
      firstExec.push(execMs);
      total.push(createMs + execMs);
    } finally {
      const [destroyMs] = await timed(() => runtime.destroy(id));
      destroys.push(destroyMs);
    }
  };
  await sample(n, once, 2);
  // The warm-up iterations pushed into the arrays too: drop them.
  for (const list of [total, createOnly, firstExec]) list.splice(0, list.length - n);
  destroys.splice(0, destroys.length - n);
  return [
    ...percentileRows(
      `${label}: create → first exec result`,
      total,
      goals ? { p50: '≤ 50', p99: '≤ 150' } : {},
    ),
    ...percentileRows(`${label}:   of which create()`, createOnly),
    ...percentileRows(`${label}:   of which first exec`, firstExec),
    ...percentileRows(`${label}: destroy`, destroys),
  ];
}

/** Exec round trip of `true` in one running sandbox, n times. */
export async function execRows({ runtime, label, n, idPrefix, spec = benchSpec }) {
  const id = `${idPrefix}-exec`;
  await runtime.create(spec(id));
  try {
    const samples = await sample(n, () => execOnce(runtime, id, 'true'), 5);
    return percentileRows(`${label}: exec round trip (true)`, samples, { p50: '≤ 5', p99: '' });
  } finally {
    await runtime.destroy(id);
  }
}

const WORKSPACE_MIB = 100;

/**
 * Write 100 MiB of incompressible data into a sandbox, snapshot it to a file, restore it into a
 * second sandbox and check the bytes arrived (sha256 inside both). `reps` rounds.
 */
export async function snapshotRows({ runtime, label, tmp, reps, idPrefix, spec = benchSpec }) {
  const source = `${idPrefix}-snap-src`;
  const target = `${idPrefix}-snap-dst`;
  const snapshots = [];
  const restores = [];
  let sizeBytes = 0;
  try {
    await runtime.create(spec(source));
    await runtime.create(spec(target));
    const [writeMs] = await timed(() =>
      execOnce(runtime, source, 'sh', [
        '-c',
        `head -c ${WORKSPACE_MIB}M /dev/urandom > $HOME/workspace.bin && sha256sum $HOME/workspace.bin`,
      ]),
    );
    const want = (await execOnce(runtime, source, 'sha256sum', ['/home/user/workspace.bin'])).stdout;
    for (let r = 0; r < reps; r++) {
      const file = join(tmp, `snapshot-${r}.tar.zst`);
      const [snapMs, info] = await timed(() => runtime.snapshot(source, file));
      const [restoreMs] = await timed(() => runtime.restore(target, file));
      sizeBytes = info.sizeBytes;
      const got = (await execOnce(runtime, target, 'sha256sum', ['/home/user/workspace.bin'])).stdout;
      if (got.split(' ')[0] !== want.split(' ')[0])
        throw new Error('restored workspace differs from the source');
      snapshots.push(snapMs);
      restores.push(restoreMs);
    }
    const note = `n=${reps}; ${WORKSPACE_MIB} MiB from /dev/urandom (written in ${Math.round(writeMs)} ms); archive ${(sizeBytes / 2 ** 20).toFixed(1)} MiB; sha256 checked`;
    return [
      row(`${label}: snapshot 100 MiB workspace p50`, median(snapshots), 'ms', '≤ 1000', note),
      row(`${label}: snapshot 100 MiB workspace max`, Math.max(...snapshots), 'ms', '≤ 1000', note),
      row(`${label}: restore 100 MiB into a new sandbox p50`, median(restores), 'ms', '≤ 1000', note),
      row(`${label}: restore 100 MiB into a new sandbox max`, Math.max(...restores), 'ms', '≤ 1000', note),
    ];
  } finally {
    await runtime.destroy(source).catch(() => undefined);
    await runtime.destroy(target).catch(() => undefined);
  }
}

function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
