// The `api` scenario: HTTP throughput and latency of the control plane's authenticated hot path
// (GET /v1/auth/me, GET /v1/workspaces/{id}) on SQLite and PostgreSQL, next to the ceiling of a
// bare node:http and a bare Fastify server answering a fixed JSON body. Every server and the
// load generator run as separate processes on loopback.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createKeys, startCorral } from '../lib/corral-server.mjs';
import { runLoad } from '../lib/load.mjs';
import { freePort, stopChild, waitForHttp } from '../lib/net.mjs';
import { startPostgres } from '../lib/postgres.mjs';
import { startRedis } from '../lib/redis.mjs';

const SQLITE_GOAL = '≥ 10,000';

function settings(options = {}) {
  const get = (key, fallback) => options[key] ?? process.env[`BENCH_API_${key.toUpperCase()}`] ?? fallback;
  return {
    durationSeconds: Number(get('duration', 10)),
    warmupSeconds: Number(get('warmup', 3)),
    connections: Number(get('connections', 32)),
    // Keys per endpoint run: the team plan allows 1000 requests/minute per key, so the load
    // rotates over enough keys that the rate limiter runs on every request but never throttles.
    keysPerRun: Number(get('keys', 400)),
    // `sqlite`, `postgres` and `sqlite+redis` (the Redis rate-limit store instead of memory).
    drivers: String(get('drivers', 'sqlite,postgres,sqlite+redis')).split(',').filter(Boolean),
    logLevel: get('log-level', undefined),
    // `--cpu-prof=DIR`: the Corral servers write V8 CPU profiles there (open in Chrome DevTools).
    cpuProfDir: get('cpu-prof', undefined),
  };
}

function round(value, digits = 1) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** req/s, p50 and p99 rows for one load run. */
function loadRows(label, r, { goal = '', note = '' } = {}) {
  const failures = `${r.errors} socket errors, ${r.non2xx} non-2xx of ${r.requests.toLocaleString('en-US')}`;
  return [
    {
      metric: `${label}: throughput`,
      value: Math.round(r.requestsPerSecond),
      unit: 'req/s',
      goal,
      note: [failures, note].filter(Boolean).join('; '),
    },
    { metric: `${label}: latency p50`, value: round(r.p50Ms, 2), unit: 'ms', goal: '', note: '' },
    {
      metric: `${label}: latency p99`,
      value: round(r.p99Ms, 2),
      unit: 'ms',
      goal: '',
      note: `max ${round(r.maxMs)} ms`,
    },
  ];
}

function failedRow(label, err) {
  const reason = String(err?.message ?? err)
    .replace(/\s+/g, ' ')
    .slice(0, 300);
  return { metric: label, value: null, unit: '', goal: '', note: `not measured: ${reason}` };
}

async function baselineRows(kind, root, knobs, log) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bench/lib/baseline-server.mjs'), kind, String(port)], {
    stdio: 'ignore',
  });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/v1/auth/me`, { child });
    log(`baseline ${kind}: loading`);
    const r = await runLoad({ url: `http://127.0.0.1:${port}/v1/auth/me`, ...knobs });
    return loadRows(`baseline: bare ${kind === 'http' ? 'node:http' : 'Fastify'}, fixed JSON`, r, {
      goal: 'ceiling',
      note: r.tool,
    });
  } finally {
    await stopChild(child);
  }
}

const DRIVERS = ['sqlite', 'postgres', 'sqlite+redis'];

async function corralRows(driver, root, knobs, log) {
  if (!DRIVERS.includes(driver)) throw new Error(`unknown driver ${driver}; known: ${DRIVERS.join(', ')}`);
  const pg = driver === 'postgres' ? await startPostgres() : null;
  const redis = driver === 'sqlite+redis' ? await startRedis() : null;
  const env = {};
  if (pg) env.DATABASE_URL = pg.url;
  if (redis) env.REDIS_URL = redis.url;
  if (knobs.logLevel) env.CORRAL_LOG_LEVEL = knobs.logLevel;
  let server;
  try {
    const nodeArgs = knobs.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${knobs.cpuProfDir}`] : [];
    server = await startCorral({ root, env, nodeArgs, log });
    const { url, credentials } = server;
    const me = await fetch(`${url}/v1/auth/me`, {
      headers: { authorization: `Bearer ${credentials.api_key}` },
    });
    await me.arrayBuffer();
    if (me.status !== 200) throw new Error(`GET /v1/auth/me with the admin key → ${me.status}`);
    if (!me.headers.get('x-ratelimit-limit'))
      throw new Error('no X-RateLimit-Limit: is the rate limiter registered?');
    log(`${driver}: creating ${2 * knobs.keysPerRun} API keys`);
    const keys = await createKeys(url, credentials.api_key, 2 * knobs.keysPerRun);
    const meKeys = keys.slice(0, knobs.keysPerRun);
    const wsKeys = keys.slice(knobs.keysPerRun);
    const label =
      {
        sqlite: 'SQLite',
        postgres: 'PostgreSQL',
        'sqlite+redis': 'SQLite, Redis rate limits',
      }[driver] ?? driver;
    const goal = driver.startsWith('sqlite') ? SQLITE_GOAL : '';
    const limiter = redis ? 'Redis' : 'memory';
    const note = `${knobs.keysPerRun} keys rotated, team plan (${limiter} limiter on, not throttling)`;
    const rows = [];
    if (driver === 'sqlite') {
      log(`${driver}: GET /healthz`);
      const health = await runLoad({ url: `${url}/healthz`, ...knobs });
      rows.push(...loadRows(`${label} GET /healthz (no auth, no DB)`, health, { note: health.tool }));
    }
    log(`${driver}: GET /v1/auth/me`);
    const meLoad = await runLoad({ url: `${url}/v1/auth/me`, tokens: meKeys, ...knobs });
    rows.push(...loadRows(`${label} GET /v1/auth/me`, meLoad, { goal, note: `${meLoad.tool}; ${note}` }));
    log(`${driver}: GET /v1/workspaces/{id}`);
    const wsLoad = await runLoad({
      url: `${url}/v1/workspaces/${credentials.workspace_id}`,
      tokens: wsKeys,
      ...knobs,
    });
    rows.push(
      ...loadRows(`${label} GET /v1/workspaces/{id}`, wsLoad, { goal, note: `${wsLoad.tool}; ${note}` }),
    );
    // A limiter that failed open would flatter the figures: show that it ran on every request.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const limiterErrors = Number(/^corral_ratelimit_errors_total (\S+)$/m.exec(metrics)?.[1] ?? Number.NaN);
    rows.push({
      metric: `${label}: rate-limit store errors`,
      value: limiterErrors,
      unit: 'count',
      goal: '0',
      note: `${limiter} store`,
    });
    return rows;
  } finally {
    log(`${driver}: stopping`);
    await server?.stop();
    log(`${driver}: corral stopped`);
    await pg?.stop();
    await redis?.stop();
    log(`${driver}: done`);
  }
}

async function run(ctx = {}) {
  const log = ctx.log ?? ((line) => console.error(`[api] ${line}`));
  const root = ctx.root ?? join(import.meta.dirname, '..', '..');
  const knobs = settings(ctx.options);
  const load = {
    durationSeconds: knobs.durationSeconds,
    warmupSeconds: knobs.warmupSeconds,
    connections: knobs.connections,
  };
  const rows = [];
  for (const kind of ['http', 'fastify']) {
    try {
      rows.push(...(await baselineRows(kind, root, load, log)));
    } catch (err) {
      rows.push(failedRow(`baseline ${kind}`, err));
    }
  }
  for (const driver of knobs.drivers) {
    try {
      rows.push(
        ...(await corralRows(
          driver,
          root,
          { ...load, keysPerRun: knobs.keysPerRun, logLevel: knobs.logLevel, cpuProfDir: knobs.cpuProfDir },
          log,
        )),
      );
    } catch (err) {
      log(`${driver} failed: ${err.stack ?? err}`);
      rows.push(failedRow(`${driver}: every figure`, err));
    }
  }
  rows.push({
    metric: 'settings',
    value: null,
    unit: '',
    goal: '',
    note: `${knobs.connections} connections, ${knobs.warmupSeconds} s warm-up + ${knobs.durationSeconds} s measured per row; server log level ${knobs.logLevel ?? 'info (default)'}`,
  });
  return rows;
}

export const name = 'api';
export const description =
  'Control-plane HTTP throughput/latency (SQLite, PostgreSQL; memory or Redis rate limits) against bare node:http and Fastify';
export default { name, description, run };
