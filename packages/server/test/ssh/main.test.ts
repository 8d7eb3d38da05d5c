import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openSandboxEngine } from '../../src/sandbox-runtime.js';
import { hostKeyPath } from '../../src/services/ssh/host-key.js';
import {
  adminKey,
  type IsolatedNetwork,
  isolatedNetwork,
  type ServerProcess,
  spawnServer,
  unmountUnder,
} from '../sandboxes/server-process.js';
import { TEST_TEMPLATE_DIR } from '../support/runtime.js';
import { freePort } from '../support/services.js';

const run = promisify(execFile);

beforeAll(async () => {
  // `npm test` builds first; a lone run of this file builds here.
  await run('npx', ['tsc', '-b', 'packages/server'], { cwd: `${import.meta.dirname}/../../../..` }).catch(
    () => undefined,
  );
}, 120_000);

/** The host key a server at 127.0.0.1:`port` offers, as `ssh-ed25519 AAAA…`. */
function scanHostKey(port: number): string {
  const out = execFileSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.trim().split(' ').slice(1, 3).join(' ');
}

describe('ssh gateway: started and stopped with the server (dist/main.js)', () => {
  let network: IsolatedNetwork;
  let dataDir: string;
  let env: Record<string, string>;
  let sshPort: number;
  const servers: ServerProcess[] = [];
  let blocker: Server | undefined;

  beforeAll(async () => {
    network = isolatedNetwork();
    dataDir = mkdtempSync(join(tmpdir(), 'corral-ssh-main-'));
    sshPort = await freePort();
    env = {
      CORRAL_DATA_DIR: dataDir,
      CORRAL_PORT: String(await freePort()),
      CORRAL_HOST: '127.0.0.1',
      CORRAL_SSH_PORT: String(sshPort),
      CORRAL_TEMPLATE_DIR: TEST_TEMPLATE_DIR,
      ...network.env,
    };
  });

  afterAll(async () => {
    for (const server of servers) await server.kill();
    blocker?.close();
    const engine = openSandboxEngine(loadConfig(env));
    for (const sandbox of await engine.runtime.list().catch(() => [])) {
      await engine.runtime.destroy(sandbox.id).catch(() => undefined);
    }
    await engine.runtime.close().catch(() => undefined);
    unmountUnder(dataDir);
    network.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('listens on CORRAL_SSH_PORT with a host key kept in the data dir; a tunnel token from the API logs in', async () => {
    const server = spawnServer(env);
    servers.push(server);
    await server.waitFor(/"msg":"ssh gateway listening"/);
    await server.waitFor(/└─+┘/);
    const file = hostKeyPath(dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'ssh')).mode & 0o777).toBe(0o700);
    const parsed = ssh2.utils.parseKey(readFileSync(file, 'utf8'));
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key || key instanceof Error) throw new Error('the host key does not parse');
    const offered = scanHostKey(sshPort);
    expect(offered).toBe(`ssh-ed25519 ${key.getPublicSSH().toString('base64')}`);

    const base = `http://127.0.0.1:${env.CORRAL_PORT}`;
    const headers = { authorization: `Bearer ${adminKey(dataDir)}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}/v1/sandboxes`, { method: 'POST', headers, body: '{}' });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const tunnel = await fetch(`${base}/v1/sandboxes/${id}/tunnel`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ kind: 'ssh' }),
    });
    expect(tunnel.status, await tunnel.clone().text()).toBe(201);
    const answer = (await tunnel.json()) as { token: string; command: string };
    expect(answer.command).toBe(`ssh -p ${sshPort} ${answer.token}@127.0.0.1`);
    const [, ...args] = answer.command.split(' ');
    const ran = await run('ssh', [
      '-F',
      '/dev/null',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      ...args,
      'echo via-main-$((6*7))',
    ]);
    expect(ran.stdout).toBe('via-main-42\n');

    // Stopped with the server; the same key after a restart.
    expect(await server.stop()).toBe(0);
    expect(() => scanHostKey(sshPort)).toThrow();
    const again = spawnServer(env);
    servers.push(again);
    await again.waitFor(/"msg":"ssh gateway listening"/);
    expect(scanHostKey(sshPort)).toBe(offered);
    expect(await again.stop()).toBe(0);
  }, 120_000);

  it('refuses to start, in one line naming CORRAL_SSH_PORT, when the SSH port is taken', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(sshPort, '127.0.0.1', resolve));
    const server = spawnServer(env);
    servers.push(server);
    const code = await new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    expect(code).toBe(1);
    expect(server.output()).toMatch(
      new RegExp(
        `corral: failed to start: the SSH gateway cannot listen on 127\\.0\\.0\\.1:${sshPort} \\(EADDRINUSE\\).*CORRAL_SSH_PORT`,
      ),
    );
  }, 60_000);
});
