import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { openSandboxEngine, type SandboxEngine } from '../../src/sandbox-runtime.js';
import { openStore } from '../../src/store/index.js';
import { createTestDatabase, DRIVERS, type TestDatabase, testConfig } from '../support/app.js';
import { TEST_TEMPLATE_DIR } from '../support/runtime.js';
import { freePort } from '../support/services.js';
import {
  adminKey,
  type IsolatedNetwork,
  isolatedNetwork,
  mountsUnder,
  networkLeftovers,
  type ServerProcess,
  spawnServer,
  unmountUnder,
} from './server-process.js';

/*
 * Issue 4, item 9: a `kill -9` of the real server (dist/main.js) while sandboxes are being
 * created, exec'd and destroyed, then a restart on the same data directory. Within 5 s of
 * start-up the store matches the runtime: no orphans, no ghosts, nothing in starting/stopping,
 * and sandboxes that were running kept running (with their processes).
 */

const run = promisify(execFile);
/** Create-and-maybe-delete loops hammering the server when it is killed. */
const WORKERS = 6;
/** Creates answered before the kill. */
const KILL_AFTER_CREATES = 8;
/** The issue's bound: reconciled and serving within 5 s of start-up. */
const RECONCILED_WITHIN_MS = 5_000;

beforeAll(async () => {
  // `npm test` builds first; a lone run of this file builds here.
  await run('npx', ['tsc', '-b', 'packages/server'], { cwd: `${import.meta.dirname}/../../../..` }).catch(
    () => undefined,
  );
}, 120_000);

for (const driver of DRIVERS) {
  describe(`crash safety: kill -9 under load, restart [${driver}]`, () => {
    let database: TestDatabase;
    let network: IsolatedNetwork;
    let config: Config;
    let env: Record<string, string>;
    const servers: ServerProcess[] = [];

    beforeAll(async () => {
      database = await createTestDatabase(driver);
      network = isolatedNetwork();
      const port = await freePort();
      config = testConfig({
        ...database.overrides,
        port,
        templateDir: TEST_TEMPLATE_DIR,
        networkBridge: network.names.bridge,
        networkSubnet: network.names.subnet,
        networkTable: network.names.tableName,
      });
      env = {
        CORRAL_DATA_DIR: config.dataDir,
        CORRAL_PORT: String(port),
        CORRAL_TEMPLATE_DIR: TEST_TEMPLATE_DIR,
        DATABASE_URL: String(database.overrides.databaseUrl),
        ...network.env,
      };
    });

    afterAll(async () => {
      for (const server of servers) await server.kill();
      // Whatever a failed run left: destroyed through a runtime like the server's.
      const engine = openSandboxEngine(config);
      for (const sandbox of await engine.runtime.list().catch(() => [])) {
        await engine.runtime.destroy(sandbox.id).catch(() => undefined);
      }
      await engine.runtime.close().catch(() => undefined);
      unmountUnder(config.dataDir);
      network.cleanup();
      expect(networkLeftovers(network)).toEqual([]);
      await database.drop();
    }, 120_000);

    it('store and runtime agree within 5 s of the restart; running sandboxes kept running', async () => {
      const base = `http://127.0.0.1:${config.port}`;
      let key = '';
      const api = (method: string, path: string, body?: unknown) =>
        fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${key}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const start = async () => {
        const server = spawnServer(env);
        servers.push(server);
        await server.waitFor(/"msg":"listening"/);
        return server;
      };

      // First start: the admin, and three sandboxes that must survive everything below.
      const first = await start();
      await first.waitFor(/└─+┘/);
      key = adminKey(config.dataDir);
      const keepers = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const res = await api('POST', '/v1/sandboxes', { name: `keeper-${i}` });
          expect(res.status, await res.clone().text()).toBe(201);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      expect(await first.stop()).toBe(0);

      // A long-running process in a keeper, started beside the server (its own runtime handle).
      const side = openSandboxEngine(config);
      const sleeper = await side.runtime.exec(keepers[0]!, { command: 'sleep', args: ['1000'] });
      sleeper.stdin.end();
      let sleeperExited = false;
      void sleeper.wait().then(() => {
        sleeperExited = true;
      });
      await side.runtime.close();

      // Second start: load, then kill -9 in the middle of it.
      const second = await start();
      // A command streaming through the server when it dies.
      const streamed = await fetch(`${base}/v1/sandboxes/${keepers[1]}/exec`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({ command: 'sleep', args: ['999'], timeout_seconds: 3600 }),
      });
      expect(streamed.status).toBe(200);
      const streamReader = streamed.body!.getReader();
      const kept: string[] = [];
      const deleted: string[] = [];
      const failures: string[] = [];
      let answeredCreates = 0;
      let crashed = false;
      const worker = async (w: number) => {
        for (let i = 0; !crashed; i++) {
          try {
            const res = await api('POST', '/v1/sandboxes', { metadata: { load: `${w}-${i}` } });
            if (res.status !== 201) failures.push(`create ${res.status} ${await res.text()}`);
            if (res.status !== 201) continue;
            const { id } = (await res.json()) as { id: string };
            answeredCreates++;
            {
              const exec = await api('POST', `/v1/sandboxes/${id}/exec`, { command: 'echo', args: ['hi'] });
              if (exec.status !== 200) failures.push(`exec ${exec.status} ${await exec.text()}`);
            }
            if ((w + i) % 2 === 1) {
              kept.push(id);
              continue;
            }
            const del = await api('DELETE', `/v1/sandboxes/${id}`);
            if (del.status === 204) deleted.push(id);
            else failures.push(`delete ${del.status} ${await del.text()}`);
          } catch {
            return; // the server is gone
          }
        }
      };
      const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      while (answeredCreates < KILL_AFTER_CREATES || deleted.length < 2) {
        expect(failures).toEqual([]);
        expect(second.child.exitCode).toBeNull();
        await new Promise((r) => setTimeout(r, 5));
      }
      crashed = true;
      await second.kill();
      await load;
      expect(failures).toEqual([]);
      expect(deleted.length + kept.length).toBeGreaterThan(0);
      const runningBefore = [...keepers, ...kept];

      // Restart: the server reconciles before it listens; within 5 s of "listening" every
      // sandbox answers in its settled state (the reconciliation itself is timed by the server).
      const third = await start();
      const listeningAt = Date.now();
      const reconciled = JSON.parse(
        third
          .output()
          .split('\n')
          .find((line) => line.includes('"msg":"sandboxes reconciled"'))!,
      );
      expect(reconciled.failures).toBe(0);
      expect(reconciled.durationMs).toBeLessThan(RECONCILED_WITHIN_MS);

      const listed: { id: string; status: string }[] = [];
      let cursor: string | null = null;
      do {
        const res = await api('GET', `/v1/sandboxes?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        const page = (await res.json()) as {
          data: { id: string; status: string }[];
          next_cursor: string | null;
        };
        listed.push(...page.data);
        cursor = page.next_cursor;
      } while (cursor);
      expect(listed.filter((s) => s.status === 'starting' || s.status === 'stopping')).toEqual([]);
      const statusOf = new Map(listed.map((s) => [s.id, s.status]));
      for (const id of runningBefore) expect(statusOf.get(id), id).toBe('running');
      for (const id of deleted) expect((await api('GET', `/v1/sandboxes/${id}`)).status, id).toBe(404);
      expect(Date.now() - listeningAt).toBeLessThan(RECONCILED_WITHIN_MS);
      await streamReader.cancel().catch(() => undefined);
      // Processes kept running through the crash: one started beside the server, one that was
      // streaming its output through the server when it was killed.
      for (const [id, args] of [
        [keepers[0], ['1000']],
        [keepers[1], ['999']],
      ] as const) {
        const res = await api('GET', `/v1/sandboxes/${id}/processes`);
        expect(res.status).toBe(200);
        const { data } = (await res.json()) as { data: { command: string; args: string[] }[] };
        expect(data.map((p) => [p.command, p.args])).toContainEqual(['sleep', args]);
      }
      for (const id of runningBefore) {
        const res = await api('POST', `/v1/sandboxes/${id}/exec`, {
          command: 'echo',
          args: ['still here'],
        });
        expect(res.status, id).toBe(200);
        expect(await res.json()).toMatchObject({ exit_code: 0, stdout: 'still here\n' });
      }
      expect(await third.stop()).toBe(0);

      // The runtime, seen through a handle like the server's (the server is stopped, so nothing
      // moves): exactly the live rows, each in its row's state.
      const engine: SandboxEngine = openSandboxEngine(config);
      const store = openStore(config);
      try {
        const rows = await store.db
          .selectFrom('sandboxes')
          .select(['id', 'status'])
          .where('deleted_at', 'is', null)
          .execute();
        const infos = await engine.runtime.list();
        const stateOf = new Map(infos.map((info) => [info.id, info.state]));
        expect(rows.map((row) => [row.id, stateOf.get(row.id)])).toEqual(
          rows.map((row) => [row.id, row.status]),
        );
        expect(infos.map((info) => info.id).sort()).toEqual(rows.map((row) => row.id).sort());
        for (const id of deleted) expect(stateOf.has(id), id).toBe(false);

        // Running sandboxes kept their processes and still run commands.
        expect(sleeperExited).toBe(false);
        const processes = await engine.runtime.processes(keepers[0]!);
        expect(processes.map((p) => [p.command, p.args])).toContainEqual(['sleep', ['1000']]);
        const streamedProcesses = await engine.runtime.processes(keepers[1]!);
        expect(streamedProcesses.map((p) => [p.command, p.args])).toContainEqual(['sleep', ['999']]);
        for (const id of runningBefore) {
          const proc = await engine.runtime.exec(id, { command: 'true' });
          proc.stdin.end();
          expect((await proc.wait()).exitCode, id).toBe(0);
        }

        // Destroyed, nothing of theirs is left: no namespace (sandbox or pool slot), no mount.
        for (const info of infos) await engine.runtime.destroy(info.id);
      } finally {
        await engine.runtime.close();
        await store.close();
      }
      expect(network.namespaces()).toEqual([]);
      expect(mountsUnder(config.dataDir)).toEqual([]);
    }, 240_000);
  });
}
