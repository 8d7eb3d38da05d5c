import type { ConfigInput } from '../../../server/src/config.js';
import { createOwnerKey, createTestApp, type TestApp } from '../../../server/test/support/app.js';
import { Corral, type CorralOptions } from '../../src/index.js';

/** A real Corral server (SQLite, the real local runtime) listening on a loopback port. */
export interface SdkTestServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  test: TestApp;
  /** A new user owning a new workspace, and an API key there with `scopes` (default `*`). */
  newKey(scopes?: string[]): Promise<{ key: string; workspaceId: string; userId: string }>;
  /** A client for a new owner key (or the given one). */
  client(options?: CorralOptions & { scopes?: string[] }): Promise<Corral>;
  close(): Promise<void>;
}

/** Starts a server for an SDK suite: `const server = await startServer()` in `beforeAll`. */
export async function startServer(config: Partial<ConfigInput> = {}): Promise<SdkTestServer> {
  const test = await createTestApp({ runtime: true, config });
  const address = await test.app.listen({ port: 0, host: '127.0.0.1' });
  const { store, app } = test;
  const newKey = async (scopes: string[] = ['*']) => {
    const owner = await createOwnerKey(store, app.audit, { scopes });
    return { key: owner.key, workspaceId: owner.workspaceId, userId: owner.userId };
  };
  return {
    url: address,
    test,
    newKey,
    async client(options = {}) {
      const { scopes, ...rest } = options;
      const apiKey = rest.apiKey ?? (await newKey(scopes)).key;
      return new Corral({ baseUrl: address, ...rest, apiKey });
    },
    close: () => test.close(),
  };
}

/** Polls `check` until it answers true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
