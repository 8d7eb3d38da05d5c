import type { Runtime } from '@corral/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { createGvisorTestApp, type GvisorTestApp } from '../support/gvisor-app.js';
import { HOME, shellOk, snapshot } from './helpers.js';

// A value that lives only in a shell's memory; it writes it to a file on SIGUSR1.
const KEEPER =
  'v=$RANDOM$RANDOM$RANDOM; trap \'echo "$v" > /tmp/dump\' USR1; echo $$ > /tmp/keeper.pid; while :; do sleep 0.1; done';

/**
 * Memory snapshots through the API on the gVisor isolation (the store driver does not matter
 * here, so SQLite only): what `include_memory` keeps, the running process, comes back.
 */
describe('snapshots on gvisor: include_memory', () => {
  let gvisor: GvisorTestApp | undefined;
  let runtime: Runtime;
  let app: App;
  let headers: { authorization: string };

  beforeAll(async () => {
    gvisor = await createGvisorTestApp();
    ({ app, runtime } = gvisor);
    headers = gvisor.owner.headers;
  });

  afterAll(async () => {
    await gvisor?.close();
  });

  async function startKeeper(id: string): Promise<number> {
    await shellOk(runtime, id, 'nohup bash -c "$1" </dev/null >/dev/null 2>&1 &', [KEEPER]);
    return waitFor(
      async () =>
        Number((await shellOk(runtime, id, 'cat /tmp/keeper.pid 2>/dev/null || true')).trim()) || undefined,
    );
  }

  async function dump(id: string, pid: number): Promise<string> {
    await shellOk(runtime, id, `rm -f /tmp/dump; kill -USR1 ${pid}`);
    return waitFor(
      async () => (await shellOk(runtime, id, 'cat /tmp/dump 2>/dev/null || true')).trim() || undefined,
    );
  }

  it('a memory snapshot restores the running process with its memory, and the files', async () => {
    expect(runtime.features.memorySnapshots).toBe(true);
    const created = await app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers,
      payload: { resources: { memory_mb: 256 }, network: { mode: 'none' } },
    });
    expect(created.statusCode, created.body).toBe(201);
    const id: string = created.json().id;
    const pid = await startKeeper(id);
    const before = await dump(id, pid);
    await shellOk(runtime, id, `echo on-disk > ${HOME}/f`);

    const taken = await snapshot({ app }, headers, id, { include_memory: true });
    expect(taken.statusCode, taken.body).toBe(201);
    const snap = taken.json();
    expect(snap).toMatchObject({ status: 'ready', includes_memory: true });
    // A memory snapshot is a plain tar; the archive route says so.
    const link = (
      await app.inject({ method: 'GET', url: `/v1/snapshots/${snap.id}/download`, headers })
    ).json();
    const url = new URL(link.url);
    const archive = await app.inject({ method: 'GET', url: `${url.pathname}${url.search}` });
    expect(archive.statusCode).toBe(200);
    expect(archive.headers['content-type']).toBe('application/x-tar');
    expect(archive.rawPayload.length).toBe(snap.size_bytes);

    await shellOk(runtime, id, `kill -9 ${pid}; echo changed > ${HOME}/f`);
    const restored = await app.inject({
      method: 'POST',
      url: `/v1/snapshots/${snap.id}/restore`,
      headers,
      payload: { sandbox_id: id },
    });
    expect(restored.statusCode, restored.body).toBe(200);
    expect(restored.json().status).toBe('running');
    expect(await shellOk(runtime, id, `cat ${HOME}/f`)).toBe('on-disk\n');
    expect(await dump(id, pid)).toBe(before);
  });

  it('a stopped sandbox has no memory to keep: 409, and the snapshot is marked error', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers,
      payload: { resources: { memory_mb: 256 }, network: { mode: 'none' } },
    });
    const id: string = created.json().id;
    await runtime.stop(id);
    await app.sandboxes.setStatus(id, 'stopped');
    const refused = await snapshot({ app }, headers, id, { include_memory: true });
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().error.code).toBe('INVALID_STATE');
    const listed = (
      await app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/snapshots`, headers })
    ).json();
    expect(listed.data).toMatchObject([{ status: 'error', includes_memory: true }]);
    // Without memory it works.
    const files = await snapshot({ app }, headers, id);
    expect(files.statusCode, files.body).toBe(201);
    expect(files.json().includes_memory).toBe(false);
  });
});

/** Polls `probe` until it yields a value (10 s deadline). */
async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
