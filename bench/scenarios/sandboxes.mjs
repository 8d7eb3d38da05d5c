// Scenario `sandboxes`: the sandbox loop through the HTTP API of a real server (a child process,
// `node packages/server/dist/main.js`, SQLite, local isolation) beside the same runtime driven
// in-process in the same run, so that the HTTP/API overhead shows. Run:
// `npm run bench -- sandboxes [--n=30 --execN=300 --concurrent=200 --workspaces=4 --fileMiB=100 --fileReps=5 --settleSeconds=10]`.
// Needs root (namespaces, cgroups, bridge, nftables). Every network object it makes has its own
// names (bridge, subnet, nft table, netns prefix), apart from a real server's and the tests'.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeys, startCorral } from '../lib/corral-server.mjs';
import { createClient } from '../lib/http-client.mjs';
import { freePort, stopChild, waitForPort } from '../lib/net.mjs';
import { removeServerNetwork, sweepServerRuntime } from '../lib/server-runtime.mjs';
import { loadRow, row, timed, unavailable } from './runtime-measure.mjs';
import { createWorkspaces } from './sandboxes-accounts.mjs';
import {
  bareTransferRows,
  concurrentRows,
  createExecRows,
  execRows,
  fileRows,
} from './sandboxes-measure.mjs';
import { httpSide, runtimeWorker } from './sandboxes-sides.mjs';

const TEMPLATE_DIR = process.env.CORRAL_TEMPLATE_DIR ?? '/var/cache/corral/templates';
/**
 * The server's network (CORRAL_NETWORK_*) and the in-process baseline's, each its own: not a
 * real server's (corral0, 100.100/16, table corral), not the runtime scenario's (corral_bench,
 * 100.104/16), not the server tests' slots (100.64-99/16) nor the runtime tests' (100.101-107,
 * 100.110+).
 */
const SERVER_NET = { bridge: 'crlsbx0', subnet: '100.108.0.0/16', table: 'corral_sbxbench' };
const BASELINE_NET = { bridge: 'crlsbx1', subnet: '100.109.0.0/16', table: 'corral_sbxbase' };

function settings(options = {}) {
  const num = (key, fallback) =>
    Number(options[key] ?? process.env[`BENCH_SANDBOXES_${key.toUpperCase()}`] ?? fallback);
  return {
    n: num('n', 30),
    execN: num('execN', 300),
    concurrent: num('concurrent', 200),
    workspaces: num('workspaces', 4),
    fileMiB: num('fileMiB', 100),
    fileReps: num('fileReps', 5),
    settleSeconds: num('settleSeconds', 10),
  };
}

/** Deletes, through the API, every sandbox still listed in the workspaces of `keys` (all the bench's own). */
async function deleteLeftovers(url, keys, log) {
  for (const key of keys) {
    const client = createClient(url, { key, maxSockets: 8 });
    try {
      const page = await client.must(200, 'GET', '/v1/sandboxes?limit=500');
      const ids = page.data.map((s) => s.id);
      if (ids.length > 0) log(`deleting ${ids.length} leftover sandboxes`);
      await Promise.all(ids.map((id) => client.call('DELETE', `/v1/sandboxes/${id}`)));
    } catch (err) {
      log(`leftover check: ${err.message}`);
    } finally {
      client.close();
    }
  }
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((line) => console.error(`[sandboxes] ${line}`));
  const root = ctx.root ?? join(import.meta.dirname, '..', '..');
  const knobs = settings(ctx.options);
  const rows = [loadRow('host load average (1 min) at start')];
  const tmp = await mkdtemp(join(tmpdir(), 'corral-bench-sandboxes-'));
  log(`${knobs.fileMiB} MiB of random bytes for the file figures`);
  const data = randomBytes(knobs.fileMiB * 2 ** 20);
  const payload = { data, sha256: createHash('sha256').update(data).digest('hex') };
  removeServerNetwork(BASELINE_NET);
  removeServerNetwork(SERVER_NET);
  let raw;
  let server;
  const keys = [];
  try {
    const payloadFile = join(tmp, 'payload.bin');
    await writeFile(payloadFile, data);
    raw = await runtimeWorker({
      root,
      dataDir: join(tmp, 'baseline'),
      templateDir: TEMPLATE_DIR,
      net: BASELINE_NET,
      prefix: `sbxbench-${process.pid}`,
      payloadFile,
    });
    server = await startCorral({ root, env: serverEnv(), log });
    const { url, credentials } = server;
    // One key per serial phase (its own rate-limit budget), in the admin's workspace; the
    // concurrent creates in workspaces of their own (the plan caps running sandboxes per workspace).
    const phaseKeys = await createKeys(url, credentials.api_key, 4, 1);
    keys.push(...phaseKeys);
    const workspaces = await createWorkspaces(url, credentials, {
      count: knobs.workspaces,
      keysPerWorkspace: 1,
    });
    keys.push(...workspaces.flatMap((w) => w.keys));
    await measure({ root, url, raw, phaseKeys, workspaces, knobs, payload, rows, log });
  } finally {
    if (server) {
      await deleteLeftovers(server.url, keys, log);
      log('stopping the server');
      await server.stop({ keepData: true });
      await sweepServerRuntime({
        root,
        dataDir: server.dataDir,
        templateDir: TEMPLATE_DIR,
        net: SERVER_NET,
        log,
      }).catch((err) => log(`sweep: ${err.message}`));
      await rm(server.dataDir, { recursive: true, force: true });
    }
    await raw?.shutdown().catch((err) => log(`runtime worker: ${err.message}`));
    removeServerNetwork(BASELINE_NET);
    removeServerNetwork(SERVER_NET);
    await rm(tmp, { recursive: true, force: true }).catch((err) => log(`cleanup: ${err.message}`));
  }
  rows.push(loadRow('host load average (1 min) at the end'));
  rows.push(
    row(
      'settings',
      null,
      '',
      '',
      [
        'server: node packages/server/dist/main.js (child process), SQLite, local isolation, team plan, log level warn',
        'in-process: the server’s own openSandboxEngine on its own network, in a process of its own (as the server is), timing each call there',
        `n=${knobs.n} create rounds, ${knobs.execN} exec rounds, ${knobs.fileMiB} MiB × ${knobs.fileReps}, HTTP and in-process samples alternating`,
        `${knobs.concurrent} concurrent creates over ${knobs.workspaces} workspaces, HTTP then in-process, ${knobs.settleSeconds} s pause before each`,
        'rate limit (team: 1000 requests/minute per API key): each serial phase has its own key, each workspace its own; a 429 would fail the row',
      ].join('; '),
    ),
  );
  return rows;
}

/**
 * Every figure, each section on its own (a failure becomes a 'not available' row). Serial
 * phases pair an HTTP side (its own key) with the in-process side (`raw.side`).
 */
async function measure({ root, url, raw, phaseKeys, workspaces, knobs, payload, rows, log }) {
  const section = async (name, sides, work) => {
    log(name);
    try {
      rows.push(...(await work()));
    } catch (err) {
      log(`${name} failed: ${err.stack ?? err}`);
      rows.push(unavailable(name, err));
    } finally {
      for (const side of sides) side.close();
    }
  };
  const pair = (phase) => ({ http: httpSide(url, phaseKeys[phase]), raw: raw.side });
  const paired = (name, phase, work) => {
    const sides = pair(phase);
    return section(name, [sides.http, sides.raw], () => work(sides));
  };
  await paired('first create → exec of each side', 0, (sides) => firstRows(sides));
  await paired('create → first exec', 1, (sides) => createExecRows({ ...sides, n: knobs.n }));
  await paired('exec round trip', 2, (sides) => execRows({ ...sides, n: knobs.execN }));
  await paired('file upload/download', 3, (sides) => fileRows({ ...sides, payload, reps: knobs.fileReps }));
  await section('bare node:http transfer', [], () =>
    withBulkServer(root, (bulkUrl) => bareTransferRows({ url: bulkUrl, payload, reps: knobs.fileReps })),
  );
  // Each burst leaves background work behind (network slots and disks re-warmed, loop devices
  // and namespaces released): a pause before each, so that neither pays for the other's.
  const settle = () => sleep(knobs.settleSeconds * 1000);
  const per = Math.ceil(knobs.concurrent / workspaces.length);
  const httpSides = workspaces.map((w) => httpSide(url, w.keys[0], { maxSockets: per }));
  await settle();
  await section('concurrent creates over HTTP', httpSides, () =>
    concurrentRows({
      sides: httpSides,
      count: knobs.concurrent,
      label: 'HTTP',
      note: `POST /v1/sandboxes over ${workspaces.length} workspaces × ${per} (team plan: 100 running per workspace), one key and ${per} keep-alive connections each`,
      log,
    }),
  );
  await settle();
  await section('concurrent creates in-process', [], () =>
    concurrentRows({
      sides: [raw.side],
      count: knobs.concurrent,
      label: 'runtime in-process',
      note: 'create() calls at once on the same runtime set-up',
      log,
    }),
  );
}

/** Runs `work(url)` against bench/lib/bulk-server.mjs in its own process. */
async function withBulkServer(root, work) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bench/lib/bulk-server.mjs'), String(port)], {
    stdio: 'ignore',
  });
  try {
    await waitForPort(port, child);
    return await work(`http://127.0.0.1:${port}`);
  } finally {
    await stopChild(child);
  }
}

function serverEnv() {
  return {
    CORRAL_LOG_LEVEL: 'warn',
    CORRAL_TEMPLATE_DIR: TEMPLATE_DIR,
    CORRAL_ISOLATION: 'local',
    CORRAL_NETWORK_BRIDGE: SERVER_NET.bridge,
    CORRAL_NETWORK_SUBNET: SERVER_NET.subnet,
    CORRAL_NETWORK_TABLE: SERVER_NET.table,
  };
}

/** The first create → exec → destroy of each side: driver start-up, template resolution, pools. */
async function firstRows({ http, raw }) {
  const rows = [];
  for (const side of [raw, http]) {
    // Timed here for both sides: the first call of the worker includes its own start-up too.
    const [ms, id] = await timed(async () => {
      const { id: created } = await side.create();
      await side.exec(created, 'true');
      return created;
    });
    await side.destroy(id);
    rows.push(
      row(
        `${side.label}: first create → exec`,
        ms,
        'ms',
        '',
        'one-off (start-up costs); not in the samples below',
      ),
    );
  }
  return rows;
}

export const name = 'sandboxes';
export const description =
  'Sandboxes over HTTP (create → first exec, exec round trip, 200 concurrent creates, 100 MiB upload/download) beside the runtime in-process';
export default { name, description, run };
export { run };
