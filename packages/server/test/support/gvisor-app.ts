import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, createTemplateStore, type Runtime } from '@corral/runtime';
import pino from 'pino';
import { type App, buildApp } from '../../src/app.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createOwnerKey, createTestDatabase, type OwnerKey, type TestDatabase, testConfig } from './app.js';
import { TEST_TEMPLATE_DIR } from './runtime.js';

/** An app on the gVisor isolation, on SQLite (the store does not matter to the gVisor suites). */
export interface GvisorTestApp {
  app: App;
  store: Store;
  runtime: Runtime;
  /** A user owning a team workspace, with a `*` API key there. */
  owner: OwnerKey;
  /** The port the app listens on (127.0.0.1) with `listen: true`; 0 otherwise. */
  port: number;
  /** Closes the app, destroys every sandbox, closes the runtime and store, drops the database. */
  close(): Promise<void>;
}

/**
 * Builds the app on a gVisor runtime of its own (state in a fresh temp folder) and a fresh
 * SQLite database, with an owner; `listen: true` also listens on an ephemeral loopback port
 * (for browsers and preview hosts). A failure part-way cleans up what was started.
 */
export async function createGvisorTestApp(options: { listen?: boolean } = {}): Promise<GvisorTestApp> {
  let database: TestDatabase | undefined;
  let store: Store | undefined;
  let runtime: Runtime | undefined;
  let stateDir: string | undefined;
  let app: App | undefined;
  const close = async () => {
    await app?.close();
    for (const s of (await runtime?.list().catch(() => [])) ?? [])
      await runtime?.destroy(s.id).catch(() => undefined);
    await runtime?.close();
    await store?.close();
    await database?.drop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  };
  try {
    database = await createTestDatabase('sqlite');
    const config = testConfig({ templateDir: TEST_TEMPLATE_DIR, ...database.overrides });
    store = openStore(config);
    await store.migrate();
    stateDir = await mkdtemp(join(tmpdir(), 'corral-srv-gv-'));
    const templates = createTemplateStore({ dir: TEST_TEMPLATE_DIR });
    runtime = createRuntime({ isolation: 'gvisor', stateDir, templates });
    app = await buildApp({
      config,
      store,
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
      runtime,
      templates,
    });
    await app.ready();
    let port = 0;
    if (options.listen) {
      await app.listen({ port: 0, host: '127.0.0.1' });
      port = (app.server.address() as AddressInfo).port;
    }
    const owner = await createOwnerKey(store, app.audit);
    return { app, store, runtime, owner, port, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
