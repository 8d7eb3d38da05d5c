// Scenario `runtime`: sandbox runtime latency, memory and snapshot figures, with bwrap, runc and
// runsc baselines measured in the same run on the same base rootfs. Imports the BUILT runtime
// (`npx tsc -b packages/runtime`). Standalone: `node bench/scenarios/runtime.mjs`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { baselineRows } from './runtime-baselines.mjs';
import { benchSpec, createRows, execOnce, execRows, snapshotRows } from './runtime-corral.mjs';
import { row, timed, unavailable } from './runtime-measure.mjs';
import { memoryRows } from './runtime-memory.mjs';

const DIST = fileURLToPath(new URL('../../packages/runtime/dist/', import.meta.url));
const TEMPLATE_DIR = '/var/cache/corral/templates';
/** Network names private to this benchmark (tests use crlbr0/crtbr0 and 100.101-102.x). */
const NET = {
  bridge: 'crbench0',
  tableName: 'corral_bench',
  netnsPrefix: 'corralbn-',
  vethPrefix: 'bn-',
  subnet: '100.104.0.0/16',
  // Nothing here resolves names; a dead loopback upstream keeps every query on this machine.
  upstreamDns: ['127.0.0.1:9'],
};

/** Knobs, from the harness context or the environment (BENCH_RUNTIME_N, _IDLE, _SNAPSHOTS). */
function settings(ctx) {
  const num = (key, fallback) =>
    Number(ctx.options?.[key] ?? process.env[`BENCH_RUNTIME_${key.toUpperCase()}`] ?? fallback);
  return {
    n: num('n', 30),
    execN: num('execN', 200),
    idle: num('idle', 200),
    snapshots: num('snapshots', 3),
  };
}

async function load(path) {
  const file = join(DIST, path);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -b packages/runtime)`);
  return import(pathToFileURL(file).href);
}

/** Every figure for one Corral runtime; `label` prefixes its metrics. */
async function corralRows(runtime, label, { n, execN, idle, snapshots }, tmp, log) {
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
        await runtime.create(benchSpec(id));
        await execOnce(runtime, id, 'true');
      });
      return [
        row(
          `${label}: first create → exec in a fresh runtime`,
          ms,
          'ms',
          '',
          'includes helper compile, cgroup and network init',
        ),
      ];
    } finally {
      await runtime.destroy(id).catch(() => undefined);
    }
  });
  await section('create → first exec', () => createRows({ runtime, label, n, idPrefix }));
  await section('exec round trip', () => execRows({ runtime, label, n: execN, idPrefix }));
  await section('memory per idle sandbox', () => memoryRows({ runtime, label, count: idle, idPrefix, log }));
  await section('snapshot + restore', () => snapshotRows({ runtime, label, tmp, reps: snapshots, idPrefix }));
  return rows;
}

/** The gvisor driver when it exists and starts a sandbox; otherwise the reason it is unavailable. */
async function gvisorRuntime(options) {
  const factory = await load('runtime.js');
  const gvisorPath = join(DIST, 'gvisor', 'index.js');
  const gvisor = existsSync(gvisorPath) ? await import(pathToFileURL(gvisorPath).href) : {};
  if (typeof gvisor.createGvisorRuntime === 'function') return gvisor.createGvisorRuntime(options);
  return factory.createRuntime({ ...options, isolation: 'gvisor' });
}

/** The machine's state when the run starts: every figure below is relative to it. */
function hostRow() {
  const [one, five] = loadavg();
  return row(
    'host load average (1 min / 5 min) at start',
    one,
    '',
    '',
    `5 min ${five.toFixed(2)}; ${cpus().length} cores; other work on the machine inflates every latency`,
  );
}

/** Remove the bench network's host objects (bridge, nft tables, leftover netns). */
function removeBenchNetwork() {
  const quiet = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  for (const line of quiet('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(NET.netnsPrefix)) quiet('ip', ['netns', 'del', name]);
  }
  quiet('nft', ['delete', 'table', 'inet', NET.tableName]);
  quiet('nft', ['delete', 'table', 'bridge', NET.tableName]);
  quiet('ip', ['link', 'del', NET.bridge]);
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((line) => console.error(`[runtime] ${line}`));
  const knobs = settings(ctx);
  const rows = [];
  const tmp = await mkdtemp(join(tmpdir(), 'corral-bench-runtime-'));
  try {
    const { createTemplateStore } = await load('templates/index.js');
    const { createRuntime } = await load('runtime.js');
    const { createNetworkManager } = await load('local/network/index.js');
    const templates = createTemplateStore({ dir: TEMPLATE_DIR });
    rows.push(hostRow());
    log('resolving the base template (built once, ~60 s, when absent)');
    const base = await templates.resolve('base', { onProgress: (line) => log(`template: ${line}`) });
    log(`baselines over ${base.rootfs}`);
    rows.push(...(await baselineRows({ rootfs: base.rootfs, tmp: join(tmp, 'baselines'), n: knobs.n, log })));

    const network = createNetworkManager({ stateDir: join(tmp, 'local', 'network'), ...NET });
    const local = createRuntime({ isolation: 'local', stateDir: join(tmp, 'local'), templates, network });
    try {
      rows.push(...(await corralRows(local, 'local', knobs, tmp, log)));
    } finally {
      await local.close().catch((err) => log(`local close: ${err.message}`));
    }
    // The same create path without a network manager: how much of create is the netns + veth.
    const bare = createRuntime({ isolation: 'local', stateDir: join(tmp, 'local-bare'), templates });
    try {
      const idPrefix = `bench-bare-${process.pid}`;
      rows.push(
        ...(await createRows({
          runtime: bare,
          label: 'local, no network manager',
          n: knobs.n,
          idPrefix,
          goals: false,
        })),
      );
    } catch (err) {
      rows.push(unavailable('local, no network manager', err));
    } finally {
      await bare.close().catch(() => undefined);
    }

    rows.push(...(await gvisorSection(knobs, templates, tmp, log)));
  } finally {
    removeBenchNetwork();
    await rm(tmp, { recursive: true, force: true }).catch((err) => log(`cleanup: ${err.message}`));
  }
  return rows;
}

async function gvisorSection(knobs, templates, tmp, log) {
  let runtime;
  try {
    runtime = await gvisorRuntime({ stateDir: join(tmp, 'gvisor'), templates });
    const probe = `bench-gvisor-probe-${process.pid}`;
    await runtime.create(benchSpec(probe, { network: { mode: 'none' } }));
    await runtime.destroy(probe);
  } catch (err) {
    await runtime?.close?.().catch(() => undefined);
    return [unavailable('gvisor: every figure', err)];
  }
  try {
    return await corralRows(runtime, 'gvisor', knobs, tmp, log);
  } finally {
    await runtime.close().catch(() => undefined);
  }
}

export const name = 'runtime';
export const description =
  'Sandbox runtime: create/exec latency, idle memory, snapshot/restore; bwrap, runc, runsc baselines';
export default { name, description, run };
export { run };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run();
  console.table(rows);
}
