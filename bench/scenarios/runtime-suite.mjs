// The full set of Corral figures for one runtime (local or gvisor), each section isolated so
// one failure becomes a 'not available' row instead of ending the run.
import { benchSpec, createRows, execOnce, execRows, snapshotRows } from './runtime-corral.mjs';
import { row, timed, unavailable } from './runtime-measure.mjs';
import { memoryRows } from './runtime-memory.mjs';

/**
 * Every figure for `runtime`; `label` prefixes its metrics, `spec(id)` makes each sandbox's
 * spec, `knobs` holds the sample counts ({ n, execN, idle, snapshots }).
 */
export async function corralRows({ runtime, label, knobs, tmp, log, spec = benchSpec }) {
  const rows = [];
  const idPrefix = `bench-${label.replace(/\W+/g, '')}-${process.pid}`;
  const section = async (name, work) => {
    log(`${label}: ${name}`);
    try {
      rows.push(...(await work()));
    } catch (err) {
      log(`${label}: ${name} failed: ${err.stack ?? err}`);
      rows.push(unavailable(`${label}: ${name}`, err));
    }
  };
  await section('first create in a fresh runtime', async () => {
    const id = `${idPrefix}-cold`;
    try {
      const [ms] = await timed(async () => {
        await runtime.create(spec(id));
        await execOnce(runtime, id, 'true');
      });
      const note = 'one-off: includes driver start-up (helper compile, cgroup and network init)';
      return [row(`${label}: first create → exec in a fresh runtime`, ms, 'ms', '', note)];
    } finally {
      await runtime.destroy(id).catch(() => undefined);
    }
  });
  const common = { runtime, label, idPrefix, spec };
  await section('create → first exec', () => createRows({ ...common, n: knobs.n }));
  await section('exec round trip', () => execRows({ ...common, n: knobs.execN }));
  await section('memory per idle sandbox', () => memoryRows({ ...common, count: knobs.idle, log }));
  await section('snapshot + restore', () => snapshotRows({ ...common, tmp, reps: knobs.snapshots }));
  return rows;
}
