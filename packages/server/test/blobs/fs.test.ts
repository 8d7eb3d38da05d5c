import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { FilesystemBlobStore } from '../../src/blobs/index.js';
import { blobStoreSuite } from './suite.js';

blobStoreSuite('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'corral-blobs-'));
  return {
    store: new FilesystemBlobStore(join(root, 'blobs')),
    close: () => rm(root, { recursive: true, force: true }),
  };
});

it('fs driver: objects are files under the root, no temp files stay, deletes drop empty directories', async () => {
  const root = await mkdtemp(join(tmpdir(), 'corral-blobs-'));
  try {
    const store = new FilesystemBlobStore(join(root, 'blobs'));
    await store.put('deep/er/key.bin', Readable.from([Buffer.from('bytes')]));
    expect(await store.path('deep/er/key.bin')).toBe(join(root, 'blobs', 'deep', 'er', 'key.bin'));
    expect(await readdir(join(root, 'blobs', '.tmp'))).toEqual([]);
    await store.delete('deep/er/key.bin');
    expect((await readdir(join(root, 'blobs'))).sort()).toEqual(['.tmp']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
