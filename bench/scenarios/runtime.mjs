// Scenario `runtime`: sandbox runtime latency, memory and snapshot figures, with bwrap, runc and
// runsc baselines measured in the same run on the same base rootfs. Imports the BUILT runtime
// (`npx tsc -b packages/runtime`). Run: `npm run bench -- runtime [--n=30 --execN=200 --idle=200
// --gvisorIdle=50 --snapshots=3]`, or standalone `node bench/scenarios/runtime.mjs` (BENCH_RUNTIME_* env).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { baselineRows } from './runtime-baselines.mjs';
import { benchSpec, createRows } from './runtime-corral.mjs';
import { loadRow, unavailable } from './runtime-measure.mjs';
import { corralRows } from './runtime-suite.mjs';

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
    // A runsc sandbox holds tens of MiB: fewer idle ones for gvisor.
    gvisorIdle: num('gvisorIdle', 50),
    snapshots: num('snapshots', 3),
  };
}

async function load(path) {
  const file = join(DIST, path);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -b packages/runtime)`);
  return import(pathToFileURL(file).href);
}

/** The gvisor driver when it exists and starts a sandbox; otherwise the reason it is unavailable. */
async function gvisorRuntime(options) {
  const factory = await load('runtime.js');
  const gvisorPath = join(DIST, 'gvisor', 'index.js');
  const gvisor = existsSync(gvisorPath) ? await import(pathToFileURL(gvisorPath).href) : {};
  if (typeof gvisor.createGvisorRuntime === 'function') return gvisor.createGvisorRuntime(options);
  return factory.createRuntime({ ...options, isolation: 'gvisor' });
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
    // bench/run.mjs records the load average; standalone, it goes with the rows.
    if (!ctx.machine) rows.push(loadRow('host load average (1 min / 5 min) at start'));
    log('resolving the base template (built once, ~60 s, when absent)');
    const base = await templates.resolve('base', { onProgress: (line) => log(`template: ${line}`) });
    log(`baselines over ${base.rootfs}`);
    rows.push(...(await baselineRows({ rootfs: base.rootfs, tmp: join(tmp, 'baselines'), n: knobs.n, log })));

    const network = createNetworkManager({ stateDir: join(tmp, 'local', 'network'), ...NET });
    const local = createRuntime({ isolation: 'local', stateDir: join(tmp, 'local'), templates, network });
    try {
      rows.push(...(await corralRows({ runtime: local, label: 'local', knobs, tmp, log })));
    } finally {
      await local.close().catch((err) => log(`local close: ${err.message}`));
    }
    rows.push(...(await variantRows(createRuntime, templates, network, knobs, tmp)));
    rows.push(...(await gvisorSection(knobs, templates, createNetworkManager, tmp, log)));
    if (!ctx.machine) rows.push(loadRow('host load average (1 min / 5 min) at the end'));
  } finally {
    removeBenchNetwork();
    await rm(tmp, { recursive: true, force: true }).catch((err) => log(`cleanup: ${err.message}`));
  }
  return rows;
}

/**
 * Create → first exec for two variants of the local driver, to split create's cost: without a
 * network manager (loopback-only netns), and with a 1 GiB disk cap (ext4 image on a loop device).
 */
async function variantRows(createRuntime, templates, network, knobs, tmp) {
  const variants = [
    { label: 'local, no network manager', dir: 'local-bare', network: undefined, spec: benchSpec },
    { label: 'local, 1 GiB disk cap', dir: 'local-disk', network, spec: diskSpec },
  ];
  const rows = [];
  for (const variant of variants) {
    const runtime = createRuntime({
      isolation: 'local',
      stateDir: join(tmp, variant.dir),
      templates,
      network: variant.network,
    });
    try {
      const idPrefix = `bench-${variant.dir}-${process.pid}`;
      const common = { runtime, label: variant.label, idPrefix, spec: variant.spec, goals: false };
      rows.push(...(await createRows({ ...common, n: knobs.n })));
    } catch (err) {
      rows.push(unavailable(variant.label, err));
    } finally {
      await runtime.close().catch(() => undefined);
    }
  }
  return rows;
}

/** A sandbox with a size-capped upper dir (the gvisor driver requires one). */
function diskSpec(id) {
  const spec = benchSpec(id);
  return { ...spec, resources: { ...spec.resources, diskMb: 1024 } };
}

async function gvisorSection(knobs, templates, createNetworkManager, tmp, log) {
  const network = createNetworkManager({ stateDir: join(tmp, 'gvisor-network'), ...NET });
  let runtime;
  try {
    runtime = await gvisorRuntime({ stateDir: join(tmp, 'gvisor'), templates, network });
    const probe = `bench-gvisor-probe-${process.pid}`;
    await runtime.create(diskSpec(probe));
    await runtime.destroy(probe);
  } catch (err) {
    await (runtime ?? network).close().catch(() => undefined);
    return [unavailable('gvisor: every figure', err)];
  }
  try {
    const gvisorKnobs = { ...knobs, idle: Math.min(knobs.idle, knobs.gvisorIdle) };
    return await corralRows({ runtime, label: 'gvisor', knobs: gvisorKnobs, tmp, log, spec: diskSpec });
  } finally {
    await runtime.close().catch(() => undefined);
  }
}

export const name = 'runtime';
export const description =
  'Sandbox runtime (local, gvisor): create/exec latency, idle memory, snapshot/restore; bwrap, runc, runsc baselines';
export default { name, description, run };
export { run };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run();
  console.table(rows);
}
