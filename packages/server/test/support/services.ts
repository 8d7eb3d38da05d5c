import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A service started for the test run; `stop()` kills it and removes its files. */
export interface TestService {
  url: string;
  stop(): Promise<void>;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${deadlineMs} ms`);
}

function postgresBinDir(): string {
  for (const version of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    "PostgreSQL is not installed: run 'apt-get install postgresql' (scripts/setup.mjs does this as root)",
  );
}

/**
 * A throwaway PostgreSQL cluster on a loopback port, owned by the `postgres` system user when
 * running as root (initdb refuses root), with trust auth on loopback only.
 */
export async function startPostgres(): Promise<TestService> {
  const bin = postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'corral-pg-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  if (asRoot) await run('chown', ['postgres:postgres', dir]);
  const [initCmd, initArgs] = wrap(join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  await run(initCmd, initArgs);
  const [pgCmd, pgArgs] = wrap(join(bin, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
  ]);
  const child = spawn(pgCmd, pgArgs, { stdio: 'ignore', detached: false });
  await waitForPort(port, child, 30_000);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      // `runuser` does not forward SIGINT, so stop the cluster through pg_ctl (fast mode).
      const [stopCmd, stopArgs] = wrap(join(bin, 'pg_ctl'), [
        '-D',
        dataDir,
        'stop',
        '-m',
        'fast',
        '-w',
        '-t',
        '30',
      ]);
      await run(stopCmd, stopArgs).catch(() => child.kill('SIGTERM'));
      await new Promise((r) =>
        child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server on a loopback port with no persistence. */
export async function startRedis(): Promise<TestService> {
  const dir = await mkdtemp(join(tmpdir(), 'corral-redis-'));
  const port = await freePort();
  const conf = join(dir, 'redis.conf');
  await writeFile(
    conf,
    `port ${port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir ${dir}\nprotected-mode yes\n`,
  );
  const child = spawn('redis-server', [conf], { stdio: 'ignore' });
  await waitForPort(port, child, 15_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
