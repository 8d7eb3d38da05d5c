// Scenario `interactive`: the ways a person gets inside a sandbox, through a real server (a child
// process, `node packages/server/dist/main.js`, SQLite, local isolation), each beside the same
// thing done on the runtime in-process in the same run: terminal keystroke echo (WebSocket vs
// runtime.pty), the preview proxy (preview URL vs a loopback port piped through
// runtime.connect), and shell time-to-first-output (terminal WebSocket, SSH gateway vs
// runtime.pty). Run: `npm run bench -- interactive [--echoN=500 --httpN=500 --connections=8
// --seconds=5 --mib=256 --reps=5 --sshN=20 --execN=200 --only=echo,shell,preview,ssh,mux]`. Needs root (namespaces, cgroups, bridge, nftables).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeys, startCorral } from '../lib/corral-server.mjs';
import { createClient } from '../lib/http-client.mjs';
import { APP_PATH, APP_SOURCE, APP_START } from '../lib/interactive-echo.mjs';
import { previewRows } from '../lib/interactive-preview.mjs';
import { echoRows, firstOutputRows, muxRows, sshRows } from '../lib/interactive-shells.mjs';
import { startBaseline } from '../lib/interactive-sides.mjs';
import { freePort } from '../lib/net.mjs';
import { removeServerNetwork, sweepServerRuntime } from '../lib/server-runtime.mjs';
import { loadRow, row, unavailable } from './runtime-measure.mjs';

const TEMPLATE_DIR = process.env.CORRAL_TEMPLATE_DIR ?? '/var/cache/corral/templates';
/**
 * Networks of its own: not a real server's (100.100), the other scenarios' (100.104, 100.106,
 * 100.108-109), the server tests' slots (100.64-99), nor the runtime tests' (100.101-107, and
 * 100.110-209 by pid).
 */
const SERVER_NET = { bridge: 'crlix0', subnet: '100.210.0.0/16', table: 'corral_ixbench' };
const BASELINE_NET = { bridge: 'crlix1', subnet: '100.211.0.0/16', table: 'corral_ixbase' };

function settings(options = {}) {
  const num = (key, fallback) =>
    Number(options[key] ?? process.env[`BENCH_INTERACTIVE_${key.toUpperCase()}`] ?? fallback);
  return {
    /** `--only=echo,preview`: some sections only (trial runs); all by default. */
    only: String(options.only ?? '')
      .split(',')
      .filter(Boolean),
    echoN: num('echoN', 500),
    httpN: num('httpN', 500),
    connections: num('connections', 8),
    seconds: num('seconds', 5),
    mib: num('mib', 256),
    reps: num('reps', 5),
    sshN: num('sshN', 20),
    execN: num('execN', 200),
  };
}

/** A nodejs sandbox through the API, running the bench app on APP_PORT. */
async function createAppSandbox(api) {
  const box = await api.must(201, 'POST', '/v1/sandboxes', {
    json: { template: 'nodejs', metadata: { bench: 'interactive' } },
  });
  const path = `/v1/sandboxes/${box.id}/files/content?path=${encodeURIComponent(APP_PATH)}`;
  const put = await api.call('PUT', path, {
    body: Buffer.from(APP_SOURCE),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`upload of the app → ${put.status}: ${put.text()}`);
  const started = await api.must(200, 'POST', `/v1/sandboxes/${box.id}/exec`, {
    json: { command: 'bash', args: ['-c', APP_START] },
  });
  if (started.exit_code !== 0) throw new Error(`the app did not start: ${started.stdout} ${started.stderr}`);
  return box;
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((line) => console.error(`[interactive] ${line}`));
  const root = ctx.root ?? join(import.meta.dirname, '..', '..');
  const knobs = settings(ctx.options);
  const rows = [loadRow('host load average (1 min) at start')];
  const tmp = await mkdtemp(join(tmpdir(), 'corral-bench-interactive-'));
  removeServerNetwork(BASELINE_NET);
  removeServerNetwork(SERVER_NET);
  let baseline;
  let server;
  let api;
  const sshPort = await freePort();
  try {
    log('baseline: runtime in-process, nodejs sandbox with the app');
    baseline = await startBaseline({
      root,
      dataDir: join(tmp, 'baseline'),
      templateDir: TEMPLATE_DIR,
      net: BASELINE_NET,
      prefix: `ixbench-${process.pid}`,
    });
    server = await startCorral({
      root,
      log,
      env: {
        CORRAL_LOG_LEVEL: 'warn',
        CORRAL_TEMPLATE_DIR: TEMPLATE_DIR,
        CORRAL_ISOLATION: 'local',
        CORRAL_NETWORK_BRIDGE: SERVER_NET.bridge,
        CORRAL_NETWORK_SUBNET: SERVER_NET.subnet,
        CORRAL_NETWORK_TABLE: SERVER_NET.table,
        CORRAL_SSH_PORT: String(sshPort),
      },
    });
    const [key] = await createKeys(server.url, server.credentials.api_key, 1, 1);
    api = createClient(server.url, { key, maxSockets: 4 });
    const box = await createAppSandbox(api);
    const env = { url: server.url, key, api, box, baseline, knobs, sshPort, log };
    await measure(env, rows);
  } finally {
    api?.close();
    if (server) {
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
    await baseline?.shutdown().catch((err) => log(`baseline worker: ${err.message}`));
    await sweepServerRuntime({
      root,
      dataDir: join(tmp, 'baseline'),
      templateDir: TEMPLATE_DIR,
      net: BASELINE_NET,
      log,
    }).catch((err) => log(`sweep: ${err.message}`));
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
        'in-process: the server’s own openSandboxEngine on its own network, in a process of its own (as the server is)',
        'app: node:http in a nodejs sandbox on each side (GET / → 2 bytes; GET /big streams from one 1 MiB buffer)',
        `echo: ${knobs.echoN} one-byte round trips after 50 warm-ups (bash → stty raw -echo; exec cat); HTTP (the three paths taking turns): ${knobs.httpN} serial GETs after 20, ${knobs.connections} connections in ${knobs.seconds} bursts of 1 s, ${knobs.mib} MiB × ${knobs.reps}; shells: ${knobs.sshN} opens; exec: ${knobs.execN} of each after 10`,
      ].join('; '),
    ),
  );
  return rows;
}

/** Every figure, each section on its own (a failure becomes a 'not available' row). */
async function measure(env, rows) {
  const section = async (name, work) => {
    env.log(name);
    try {
      rows.push(...(await work()));
    } catch (err) {
      env.log(`${name} failed: ${err.stack ?? err}`);
      rows.push(unavailable(name, err));
    }
  };
  const sections = {
    echo: ['terminal keystroke echo', echoRows],
    shell: ['shell time to first output', firstOutputRows],
    preview: ['preview proxy', previewRows],
    ssh: ['SSH time to prompt', sshRows],
    mux: ['exec over /ws and over HTTP', muxRows],
  };
  for (const [key, [name, work]] of Object.entries(sections)) {
    if (env.knobs.only.length === 0 || env.knobs.only.includes(key)) await section(name, () => work(env));
  }
}

export const name = 'interactive';
export const description =
  'Terminal keystroke echo, preview proxy latency/throughput and shell time-to-prompt (terminal, SSH), each beside the runtime in-process';
export default { name, description, run };
export { run };
