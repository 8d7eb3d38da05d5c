// Measures the local driver's budgets (create → first exec, exec round trip, idle memory).
// Run as root after `npx tsc -b packages/runtime`:  node packages/runtime/test/local-measure.mjs [idleCount]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetworkManager } from '../dist/local/network/index.js';
import { createRuntime } from '../dist/runtime.js';
import { createTemplateStore } from '../dist/templates/index.js';

const idleCount = Number(process.argv[2] ?? 100);
// CORRAL_NET_POOL=n: keep n ready network slots (0 = none, as before).
const poolSize = Number(process.env.CORRAL_NET_POOL ?? 0);
const stateDir = mkdtempSync(join(tmpdir(), 'corral-measure-'));
const templates = createTemplateStore({ dir: '/var/cache/corral/templates' });
const network = createNetworkManager({
  stateDir: join(stateDir, 'network'),
  bridge: 'crmbr0',
  tableName: 'corral_measure',
  netnsPrefix: 'crm-',
  vethPrefix: 'cm-',
  subnet: '100.103.0.0/16',
  upstreamDns: ['127.0.0.1:1'], // nothing resolves; no query leaves the machine
  poolSize,
});
const withNet = createRuntime({ isolation: 'local', stateDir, templates, network });
const bare = createRuntime({ isolation: 'local', stateDir: join(stateDir, 'bare'), templates });
const spec = (id, diskMb) => ({
  id,
  template: 'base',
  resources: { cpu: 1, memoryMb: 512, diskMb, pids: 256 },
  env: {},
  network: { mode: 'internet' },
  metadata: {},
});
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(2);
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)].toFixed(2);
async function run(rt, id, command) {
  const p = await rt.exec(id, { command });
  p.stdin.end();
  p.stdout.resume();
  p.stderr.resume();
  return p.wait();
}
const meminfo = (field) =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
const memAvailable = () => meminfo('MemAvailable');
// Kernel memory the cgroup does not see: slab (namespaces, mounts, inodes), stacks, page tables.
const kernelBytes = () => meminfo('Slab') + meminfo('KernelStack') + meminfo('PageTables');

await bare.list();
await withNet.list();
for (const [label, rt, diskMb] of [
  ['no netns manager, no disk cap', bare, 0],
  ['no netns manager, 1 GiB disk cap', bare, 1024],
  ['network manager, no disk cap', withNet, 0],
  ['network manager, 1 GiB disk cap', withNet, 1024],
]) {
  const createMs = [];
  const totalMs = [];
  for (let i = 0; i < 15; i++) {
    const id = `m-${diskMb}-${i}`;
    const t0 = performance.now();
    await rt.create(spec(id, diskMb));
    const t1 = performance.now();
    await run(rt, id, 'true');
    createMs.push(t1 - t0);
    totalMs.push(performance.now() - t0);
    // the first one warms the template and the disk pool
    if (i === 0) createMs.length = totalMs.length = 0;
  }
  console.log(
    `${label}: create p50 ${p50(createMs)} ms, create→first exec p50 ${p50(totalMs)} ms (p90 ${p90(totalMs)})`,
  );
  for (let i = 0; i < 15; i++) await rt.destroy(`m-${diskMb}-${i}`);
}
// The network manager alone: setup() of a new sandbox, waiting between calls as a create would.
const setupMs = [];
for (let i = 0; i < 15; i++) {
  const t0 = performance.now();
  await network.setup(`s-${i}`, { mode: 'internet' });
  setupMs.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 150));
}
for (let i = 0; i < 15; i++) await network.teardown(`s-${i}`);
console.log(`network.setup() alone (pool ${poolSize}): p50 ${p50(setupMs)} ms, p90 ${p90(setupMs)} ms`);
await bare.create(spec('exec', 0));
const execMs = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  await run(bare, 'exec', 'true');
  execMs.push(performance.now() - t0);
}
console.log(`exec round trip of true: p50 ${p50(execMs)} ms, p90 ${p90(execMs)} ms`);
await bare.destroy('exec');

const before = memAvailable();
const kernelBefore = kernelBytes();
for (let i = 0; i < idleCount; i++) await withNet.create(spec(`idle-${i}`, 1024));
await new Promise((r) => setTimeout(r, 2000));
const after = memAvailable();
const kernelAfter = kernelBytes();
let cgroupBytes = 0;
for (let i = 0; i < idleCount; i++) cgroupBytes += (await withNet.stats(`idle-${i}`)).memoryBytes;
const initPid = JSON.parse(readFileSync(join(stateDir, 'sandboxes', 'idle-0', 'state.json'), 'utf8')).init
  .pid;
const rollup = readFileSync(`/proc/${initPid}/smaps_rollup`, 'utf8');
console.log(
  `idle: ${idleCount} sandboxes; MemAvailable drop ${((before - after) / idleCount / 2 ** 20).toFixed(2)} MiB each; ` +
    `cgroup memory.usage ${(cgroupBytes / idleCount / 2 ** 20).toFixed(2)} MiB each; kernel (slab+stacks+page tables) ${((kernelAfter - kernelBefore) / idleCount / 2 ** 20).toFixed(2)} MiB each; init ${/^Rss:.*$/m.exec(rollup)[0]}, ${/^Pss:.*$/m.exec(rollup)[0]}`,
);
for (let i = 0; i < idleCount; i++) await withNet.destroy(`idle-${i}`);
await withNet.close();
await bare.close();
rmSync(stateDir, { recursive: true, force: true });
// The network manager keeps its bridge and tables for the next start; this was a throwaway one.
for (const args of [
  ['nft', 'delete', 'table', 'inet', 'corral_measure'],
  ['nft', 'delete', 'table', 'bridge', 'corral_measure'],
  ['ip', 'link', 'del', 'crmbr0'],
]) {
  try {
    execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
  } catch {
    // already gone
  }
}
