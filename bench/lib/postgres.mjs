// A throwaway PostgreSQL cluster on loopback, for the benchmark and the server test suites
// (packages/server/test/support/services.ts re-exports it).
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './net.mjs';

const run = promisify(execFile);

function postgresBinDir() {
  for (const version of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error("PostgreSQL is not installed: run 'apt-get install postgresql'");
}

/** Starts a cluster (as `postgres` when root: initdb refuses root); `stop()` removes it. */
export async function startPostgres() {
  const bin = postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'corral-pg-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
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
  // Durability settings as in the test cluster: the benchmark measures the API, not fsync.
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
  const child = spawn(pgCmd, pgArgs, { stdio: 'ignore' });
  await waitForPort(port, child, 30_000);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        // Not a signal to the child: when root, the child is runuser, which does not pass
        // SIGINT on to postgres (the cluster would outlive us). pg_ctl reaches postgres itself.
        const [stopCmd, stopArgs] = wrap(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
        await run(stopCmd, stopArgs).catch(() => child.kill('SIGKILL'));
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
