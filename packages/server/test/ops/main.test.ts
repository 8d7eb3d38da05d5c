import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type IsolatedNetwork,
  isolatedNetwork,
  mountsUnder,
  networkLeftovers,
} from '../sandboxes/server-process.js';
import { TEST_TEMPLATE_DIR } from '../support/runtime.js';
import { freePort } from '../support/services.js';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../../../..');
const mainJs = join(repoRoot, 'packages/server/dist/main.js');

interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Starts the built server and resolves once its stdout contains `marker`. */
async function start(env: Record<string, string>, marker: RegExp, deadlineMs = 30_000): Promise<Started> {
  const child = spawn('node', [mainJs], {
    env: { PATH: process.env.PATH ?? '', CORRAL_SSH_PORT: '0', ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += String(d);
  });
  child.stderr.on('data', (d) => {
    out += String(d);
  });
  const deadline = Date.now() + deadlineMs;
  while (!marker.test(out)) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`no ${marker} within ${deadlineMs} ms: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

// These run the built server, as `npm start` does; build it once for the file.
beforeAll(async () => {
  await run('npx', ['tsc', '-b', 'packages/server'], { cwd: repoRoot }).catch(() => undefined);
}, 120_000);

describe('main: first start and restart', () => {
  const children: ChildProcess[] = [];
  // The server opens a real runtime: its bridge, subnet and nft table are a test slot's, never
  // a real server's on this machine; all of it is removed afterwards.
  let network: IsolatedNetwork;
  beforeAll(() => {
    network = isolatedNetwork();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });
  afterAll(() => {
    network.cleanup();
    expect(networkLeftovers(network)).toEqual([]);
  });

  it('prints the admin key once, serves it, stops cleanly on SIGTERM, and does not bootstrap again', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'corral-main-'));
    const port = await freePort();
    const env = {
      CORRAL_DATA_DIR: dataDir,
      CORRAL_PORT: String(port),
      CORRAL_TEMPLATE_DIR: TEST_TEMPLATE_DIR,
      ...network.env,
    };

    const first = await start(env, /└─+┘/);
    children.push(first.child);
    const key = /API key\s+(crl_sk_[A-Za-z0-9_-]+)/.exec(first.output())?.[1];
    expect(key).toBeDefined();
    const file = join(dataDir, 'admin-credentials.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(readFileSync(file, 'utf8'));
    expect(credentials).toMatchObject({
      url: `http://127.0.0.1:${port}`,
      email: 'admin@corral.local',
      api_key: key,
    });
    expect(credentials.password.length).toBeGreaterThanOrEqual(16);

    const me = await fetch(`http://127.0.0.1:${port}/v1/auth/me`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(me.status).toBe(200);
    expect(me.headers.get('x-request-id')).toMatch(/^req_/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.text()).toBe('ok');
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', runtime: 'ok' } });
    // The runtime makes network slots ready while it runs …
    const deadline = Date.now() + 20_000;
    while (network.namespaces().length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(network.namespaces().length).toBeGreaterThan(0);
    expect(await stop(first.child)).toBe(0);
    // … and a clean stop removes them: with no sandboxes, no namespace of this server is left.
    expect(network.namespaces()).toEqual([]);
    expect(first.output()).toMatch(/"msg":"sandboxes reconciled"/);
    // The key is never written to the log lines.
    const logLines = first
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(key!);

    const second = await start(env, /"msg":"listening"/);
    children.push(second.child);
    const again = await fetch(`http://127.0.0.1:${port}/v1/auth/me`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(again.status).toBe(200);
    expect(await stop(second.child)).toBe(0);
    expect(second.output()).not.toContain('API key');
    expect(network.namespaces()).toEqual([]);
    // Nothing of the runtime stays mounted (its ready disks are let go on stop).
    expect(mountsUnder(dataDir)).toEqual([]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a second server on the same sandbox network refuses to start and leaves the first untouched', async () => {
    const envFor = async () => ({
      CORRAL_DATA_DIR: mkdtempSync(join(tmpdir(), 'corral-main-')),
      CORRAL_PORT: String(await freePort()),
      CORRAL_TEMPLATE_DIR: TEST_TEMPLATE_DIR,
      ...network.env,
    });
    const firstEnv = await envFor();
    const first = await start(firstEnv, /"msg":"listening"/);
    children.push(first.child);
    const secondEnv = await envFor();
    const second = spawn('node', [mainJs], {
      env: { PATH: process.env.PATH ?? '', CORRAL_SSH_PORT: '0', ...secondEnv },
    });
    children.push(second);
    let err = '';
    second.stderr.on('data', (d) => {
      err += String(d);
    });
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/another Corral server \(pid \d+\).*CORRAL_NETWORK_TABLE/);
    // The first still serves, and still has its ready network slots.
    expect((await fetch(`http://127.0.0.1:${firstEnv.CORRAL_PORT}/readyz`)).status).toBe(200);
    expect(network.namespaces().length).toBeGreaterThan(0);
    expect(await stop(first.child)).toBe(0);
    expect(network.namespaces()).toEqual([]);
    for (const env of [firstEnv, secondEnv]) rmSync(env.CORRAL_DATA_DIR, { recursive: true, force: true });
  });
});

describe('main: bad configuration', () => {
  it('exits 1 printing one line that names the bad variable', async () => {
    expect(existsSync(mainJs)).toBe(true);
    const dataDir = mkdtempSync(join(tmpdir(), 'corral-main-'));
    const result = await run('node', [mainJs], {
      env: { PATH: process.env.PATH, CORRAL_PORT: 'abc', CORRAL_DATA_DIR: dataDir },
    }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('CORRAL_PORT must be an integer 1-65535 (got "abc")\n');
    expect(existsSync(join(dataDir, 'corral.db'))).toBe(false);
  });

  it('a bad config file is also one line and exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-main-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{not json');
    const result = await run('node', [mainJs], {
      env: { PATH: process.env.PATH, CORRAL_CONFIG_FILE: file, CORRAL_DATA_DIR: dir },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^CORRAL_CONFIG_FILE must name a readable JSON file/);
    expect(readFileSync(file, 'utf8')).toBe('{not json');
  });
});
