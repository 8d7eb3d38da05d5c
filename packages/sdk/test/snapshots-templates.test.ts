import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestImage } from '../../server/test/templates/support.js';
import {
  ConflictError,
  type Corral,
  Sandbox,
  SnapshotNotFoundError,
  TemplateNotFoundError,
} from '../src/index.js';
import { type SdkTestServer, startServer } from './support/server.js';

describe('sdk: snapshots and templates', () => {
  let server: SdkTestServer;
  let corral: Corral;

  beforeAll(async () => {
    server = await startServer();
    corral = await server.client();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('snapshots a sandbox, lists, gets, downloads, restores into it and into a new one, removes', async () => {
    const box = await corral.sandboxes.create({ template: 'base' });
    await box.files.write('state.txt', 'before');
    const snap = await box.snapshots.create({ name: 'first' });
    expect(snap).toMatchObject({ name: 'first', sandbox_id: box.id, status: 'ready' });
    expect(snap.id).toMatch(/^snap_/);
    const page = await box.snapshots.list();
    expect(page.data.map((s) => s.id)).toEqual([snap.id]);
    expect(await corral.snapshots.get(snap.id)).toEqual(snap);

    const link = await corral.snapshots.downloadUrl(snap.id, { ttlSeconds: 60 });
    expect(link.url).toContain(`/v1/snapshots/${snap.id}/archive?`);
    const archive = new Uint8Array(
      await new Response(await corral.snapshots.download(snap.id)).arrayBuffer(),
    );
    expect(archive.length).toBe(snap.size_bytes);

    await box.files.write('state.txt', 'after');
    const restored = await corral.snapshots.restore(snap.id, { sandboxId: box.id });
    expect(restored.id).toBe(box.id);
    expect(await restored.files.readText('state.txt')).toBe('before');

    const fresh = await corral.snapshots.restore(snap.id);
    expect(fresh).toBeInstanceOf(Sandbox);
    expect(fresh.id).not.toBe(box.id);
    expect(await fresh.files.readText('state.txt')).toBe('before');

    await corral.snapshots.remove(snap.id);
    await expect(corral.snapshots.get(snap.id)).rejects.toBeInstanceOf(SnapshotNotFoundError);
    await fresh.destroy();
    await box.destroy();
  });

  it('lists and gets templates, imports an image tarball, and removes it', async () => {
    const page = await corral.templates.list();
    const names = page.data.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['base', 'python', 'nodejs', 'go', 'gui']));
    expect(await corral.templates.get('python')).toMatchObject({ name: 'python', builtin: true });
    await expect(corral.templates.get('tpl_nope')).rejects.toBeInstanceOf(TemplateNotFoundError);

    const { tar, marker } = await makeTestImage();
    const building = await corral.templates.create({ name: 'sdk-image', image: new Uint8Array(tar) });
    expect(building).toMatchObject({ name: 'sdk-image', status: 'building', source: 'image' });
    const ready = await corral.templates.waitUntilReady(building.id, { intervalMs: 100 });
    expect(ready.status, String((ready as { log?: unknown }).log)).toBe('ready');

    const box = await corral.sandboxes.create({ template: 'sdk-image' });
    // The image is minimal (no shell, no coreutils): the sandbox runs on it; its tree holds the marker.
    expect(box.status).toBe('running');
    const tree = (await server.test.engine?.templates.list())?.find((t) => t.id === ready.runtime_id);
    expect(readFileSync(join(String(tree?.rootfs), 'etc/marker'), 'utf8').trim()).toBe(marker);
    await expect(corral.templates.remove(building.id)).rejects.toBeInstanceOf(ConflictError);
    await box.destroy();
    await corral.templates.remove(building.id);
    await expect(corral.templates.get(building.id)).rejects.toBeInstanceOf(TemplateNotFoundError);
  });
});
