import { rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { createKeys, startCorral } from '../lib/corral-server.mjs';
import { removeServerNetwork, sweepServerRuntime } from '../lib/server-runtime.mjs';
import { percentileRows, quantile, row, timed, unavailable } from './runtime-measure.mjs';

const TEMPLATE_DIR = process.env.CORRAL_TEMPLATE_DIR ?? '/var/cache/corral/templates';
/** Not a real server's (100.100), the other scenarios' (100.104, 100.108-109) nor the tests' (100.64-99, 100.101-107 listed, 100.110+). */
const NET = { bridge: 'crlsdk0', subnet: '100.106.0.0/16', table: 'corral_sdkbench' };
const METADATA = { bench: 'sdk' };

/** The SDK side: `corral.sandboxes.create()`, `box.exec('true')`, `box.destroy()`. */
async function sdkSide(root, url, key) {
  const { Corral } = await import(pathToFileURL(join(root, 'packages/sdk/dist/index.js')).href);
  const corral = new Corral({ baseUrl: url, apiKey: key, maxRetries: 0 });
  return {
    label: 'SDK',
    async create() {
      return corral.sandboxes.create({ metadata: METADATA });
    },
    async exec(box) {
      const r = await box.exec('true');
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
    },
    destroy: (box) => box.destroy(),
  };
}

/** The raw side: the same calls with fetch and the API key as the bearer. */
function fetchSide(url, key) {
  const call = async (method, path, body, expect) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status !== expect) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    label: 'fetch',
    create: () => call('POST', '/v1/sandboxes', { metadata: METADATA }, 201),
    async exec(box) {
      const r = await call('POST', `/v1/sandboxes/${box.id}/exec`, { command: 'true' }, 200);
      if (r.exit_code !== 0) throw new Error(`true exited ${r.exit_code}`);
    },
    destroy: (box) => call('DELETE', `/v1/sandboxes/${box.id}`, undefined, 204),
  };
}

/** `n` rounds (after 2 warm-ups) of create → exec → destroy, the sides alternating. */
async function createExec(sides, n, log) {
  const samples = new Map(sides.map((s) => [s, []]));
  for (let i = -2; i < n; i++) {
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
      const [ms, box] = await timed(async () => {
        const created = await side.create();
        await side.exec(created);
        return created;
      });
      await side.destroy(box);
      if (i >= 0) samples.get(side).push(ms);
      await sleep(150);
    }
    if (i > 0 && i % 10 === 0) log(`${i}/${n}`);
  }
  return samples;
}

async function deleteLeftovers(url, key, log) {
  try {
    const res = await fetch(`${url}/v1/sandboxes?limit=500`, { headers: { authorization: `Bearer ${key}` } });
    const ids = (await res.json()).data.map((s) => s.id);
    if (ids.length > 0) log(`deleting ${ids.length} leftover sandboxes`);
    await Promise.all(
      ids.map((id) =>
        fetch(`${url}/v1/sandboxes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } }),
      ),
    );
  } catch (err) {
    log(`leftover check: ${err.message}`);
  }
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((line) => console.error(`[sdk] ${line}`));
  const root = ctx.root ?? join(import.meta.dirname, '..', '..');
  const n = Number(ctx.options?.n ?? process.env.BENCH_SDK_N ?? 30);
  const [load1] = loadavg();
  const rows = [row('host load average (1 min) at start', load1, '', '', `${cpus().length} cores`)];
  removeServerNetwork(NET);
  let server;
  let admin;
  try {
    server = await startCorral({
      root,
      log,
      env: {
        CORRAL_LOG_LEVEL: 'warn',
        CORRAL_TEMPLATE_DIR: TEMPLATE_DIR,
        CORRAL_ISOLATION: 'local',
        CORRAL_NETWORK_BRIDGE: NET.bridge,
        CORRAL_NETWORK_SUBNET: NET.subnet,
        CORRAL_NETWORK_TABLE: NET.table,
      },
    });
    admin = server.credentials.api_key;
    const [sdkKey, fetchKey] = await createKeys(server.url, admin, 2, 1);
    const sdk = await sdkSide(root, server.url, sdkKey);
    const raw = fetchSide(server.url, fetchKey);
    try {
      const samples = await createExec([sdk, raw], n, log);
      const s = samples.get(sdk);
      const f = samples.get(raw);
      rows.push(
        ...percentileRows(
          'SDK: sandboxes.create() → first box.exec()',
          s,
          {},
          'default spec; the SDK exchanges its key for a JWT (refreshed on its own)',
        ),
        ...percentileRows(
          'fetch: POST /v1/sandboxes → first POST …/exec',
          f,
          {},
          'the same two calls, API key as bearer, same fetch (undici)',
        ),
        row(
          'SDK overhead on create → first exec (p50)',
          quantile(s, 0.5) - quantile(f, 0.5),
          'ms',
          '',
          'SDK p50 minus fetch p50 (noise included: the runtime dominates)',
        ),
      );
    } catch (err) {
      log(`create → exec failed: ${err.stack ?? err}`);
      rows.push(unavailable('create → first exec', err));
    }
  } finally {
    if (server) {
      if (admin) await deleteLeftovers(server.url, admin, log);
      await server.stop({ keepData: true });
      await sweepServerRuntime({
        root,
        dataDir: server.dataDir,
        templateDir: TEMPLATE_DIR,
        net: NET,
        log,
      }).catch((err) => log(`sweep: ${err.message}`));
      await rm(server.dataDir, { recursive: true, force: true });
    }
    removeServerNetwork(NET);
  }
  rows.push(
    row(
      'settings',
      null,
      '',
      '',
      `server: node packages/server/dist/main.js (child process), SQLite, local isolation, team plan; n=${n} rounds per side after 2 warm-ups, sides alternating, each round create → exec true → destroy`,
    ),
  );
  return rows;
}

export const name = 'sdk';
export const description =
  'The SDK’s create → first exec beside plain fetch making the same calls, same server, same run';
export default { name, description, run };
export { run };
