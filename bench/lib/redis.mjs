// A throwaway redis-server on loopback (no persistence), for the benchmark and the server
// test suites (packages/server/test/support/services.ts re-exports it).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, waitForPort } from './net.mjs';

/** Starts redis-server; `stop()` ends it and removes its directory. */
export async function startRedis() {
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
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
