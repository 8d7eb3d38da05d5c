// The built Corral server as a child process on a temp data directory, for benchmarks.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, waitForHttp } from './net.mjs';

/**
 * Starts `node packages/server/dist/main.js` with a fresh CORRAL_DATA_DIR on a free loopback
 * port, waits for /healthz and the first-start `admin-credentials.json`, and resolves with
 * `{ url, credentials, pid, dataDir, stop() }` (`stop({ keepData: true })` leaves the data
 * directory for the caller to inspect and remove). `env` adds settings (DATABASE_URL, CORRAL_LOG_LEVEL …);
 * the caller's REDIS_URL / DATABASE_URL are not inherited. `nodeArgs` go before the script
 * (e.g. `--cpu-prof`).
 */
export async function startCorral({ root, env = {}, nodeArgs = [], log = () => {} }) {
  const main = join(root, 'packages/server/dist/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run 'npm run build' first`);
  const dataDir = await mkdtemp(join(tmpdir(), 'corral-bench-data-'));
  const port = await freePort();
  const { REDIS_URL: _redis, DATABASE_URL: _database, ...inherited } = process.env;
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      ...inherited,
      CORRAL_DATA_DIR: dataDir,
      CORRAL_PORT: String(port),
      CORRAL_HOST: '127.0.0.1',
      CORRAL_DEFAULT_PLAN: 'team',
      // The SSH gateway stays off unless a scenario asks for it (several servers, one port 2222).
      CORRAL_SSH_PORT: '0',
      ...env,
    },
    // stdout carries one log line per request: written to /dev/null, so that neither a pipe
    // nor this process's reading of it is part of the measurement.
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => {
    if (stderr.length < 4096) stderr += c;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async ({ keepData = false } = {}) => {
    await stopChild(child);
    if (!keepData) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`${url}/healthz`, { child, deadlineMs: 60_000 });
    const credentials = await readCredentials(join(dataDir, 'admin-credentials.json'), child);
    log(`corral pid ${child.pid} on ${url} (${env.DATABASE_URL ? 'postgres' : 'sqlite'})`);
    return { url, credentials, pid: child.pid, dataDir, stop };
  } catch (err) {
    await stop();
    throw new Error(`corral did not start: ${err.message}${stderr ? `; stderr: ${stderr}` : ''}`);
  }
}

/** Polls for the first-start credentials file until it holds complete JSON (it may be mid-write). */
async function readCredentials(file, child) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(file)) {
      try {
        return JSON.parse(await readFile(file, 'utf8'));
      } catch {
        // Created but not written yet: poll again.
      }
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no complete ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates `count` API keys (scope `*`) through the API with `apiKey`, `concurrency` at a time. */
export async function createKeys(url, apiKey, count, concurrency = 8) {
  const keys = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      const response = await fetch(`${url}/v1/account/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `bench-${n}` }),
      });
      const text = await response.text();
      if (response.status !== 201) throw new Error(`POST /v1/account/keys → ${response.status}: ${text}`);
      keys.push(JSON.parse(text).key);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return keys;
}
