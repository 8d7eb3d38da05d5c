import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SdkTestServer, startServer } from './support/server.js';

// The examples import `@corral/sdk` (the built package) and read CORRAL_URL / CORRAL_API_KEY.
describe('sdk: examples run against a real server', () => {
  let server: SdkTestServer;
  const saved = { url: process.env.CORRAL_URL, key: process.env.CORRAL_API_KEY };
  let printed: string[];

  beforeAll(async () => {
    server = await startServer();
    process.env.CORRAL_URL = server.url;
    process.env.CORRAL_API_KEY = (await server.newKey()).key;
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(async () => {
    process.env.CORRAL_URL = saved.url;
    process.env.CORRAL_API_KEY = saved.key;
    if (saved.url === undefined) delete process.env.CORRAL_URL;
    if (saved.key === undefined) delete process.env.CORRAL_API_KEY;
    await server?.close();
  });

  const capture = () => {
    printed = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      printed.push(args.join(' '));
    });
  };
  const remaining = async () =>
    (await server.test.store.db.selectFrom('sandboxes').select(['id', 'status']).execute()).filter(
      (r) => r.status !== 'deleted',
    );

  it('quickstart.ts', async () => {
    capture();
    await import('../examples/quickstart.js');
    expect(printed).toEqual([
      'python printed 1 (exit 0)',
      'hello.py holds: print("hello from a file")',
      'running it: hello from a file',
    ]);
    expect(await remaining()).toEqual([]);
  });

  it('streaming.ts', async () => {
    capture();
    await import('../examples/streaming.js');
    expect(printed).toEqual([
      '[stdout] tick 1',
      '[stdout] tick 2',
      '[stdout] tick 3',
      'counting exited 0',
      'tr says: SHOUT THIS',
      'stderr: something went wrong',
      'failing exited 3',
      'sleep was killed: exit 137',
    ]);
    expect(await remaining()).toEqual([]);
  });

  it('files-and-snapshots.ts', async () => {
    capture();
    await import('../examples/files-and-snapshots.js');
    expect(printed).toEqual([
      'wrote 792 bytes to /home/user/data/lines.txt',
      'last line: line 100',
      'file lines.txt 792',
      'snapshot with-data is ready',
      'the original no longer has the file',
      'the restored sandbox has 100 lines',
    ]);
    expect(await remaining()).toEqual([]);
  });
});
