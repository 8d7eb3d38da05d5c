import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRuntimeError } from '../../src/errors.js';
import { SANDBOX_ID_BASE } from '../../src/shared/ids.js';
import { templateId } from '../../src/templates/definition.js';
import { createTemplateStore } from '../../src/templates/index.js';
import { sha256File } from '../../src/templates/oci-import.js';
import { makeDockerSaveImage, makeEscapingLayer, makeLayer, makeOciImage } from './images.js';

const execFileAsync = promisify(execFile);
let work: string;

/** Three layers exercising order, whiteouts, opaque dirs, owners, setuid and a symlink escape. */
async function standardLayers(gzip: boolean) {
  const lower = await makeLayer(work, {
    files: {
      'a.txt': 'one\n',
      'del.txt': 'doomed\n',
      'opq/lower1': 'lower\n',
      'opq/sub/lower2': 'lower\n',
      'keep/k': 'kept\n',
      'usr/bin/tool': { content: '#!/bin/sh\n', mode: 0o4755 },
      'home/u/f': { content: 'mine\n', uid: 1000, gid: 1000 },
    },
    dirs: ['etc'],
    symlinks: { escape: '/../../../../../../tmp/corral-escape-target' },
    gzip,
  });
  const upper = await makeLayer(work, {
    files: { 'a.txt': 'two\n', '.wh.del.txt': '', 'opq/.wh..wh..opq': '', 'opq/upper': 'upper\n' },
    symlinks: { link: '/a.txt' },
  });
  // Written through the `escape` symlink: must land inside the tree, not in the host's /tmp.
  const top = await makeLayer(work, { files: { 'escape/pwned': 'pwned\n' }, gzip, withoutDirectories: true });
  return [
    { ...lower, gzip },
    { ...upper, gzip: false },
    { ...top, gzip },
  ];
}

async function expectStandardTree(rootfs: string) {
  expect(await readFile(path.join(rootfs, 'a.txt'), 'utf8')).toBe('two\n');
  await expect(lstat(path.join(rootfs, 'del.txt'))).rejects.toThrow(/ENOENT/);
  await expect(lstat(path.join(rootfs, '.wh.del.txt'))).rejects.toThrow(/ENOENT/);
  expect((await readdir(path.join(rootfs, 'opq'))).sort()).toEqual(['upper']);
  expect(await readFile(path.join(rootfs, 'keep/k'), 'utf8')).toBe('kept\n');
  expect(await readlink(path.join(rootfs, 'link'))).toBe('/a.txt');
  const tool = await lstat(path.join(rootfs, 'usr/bin/tool'));
  expect([tool.uid, tool.gid, tool.mode & 0o7777]).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE, 0o4755]);
  const mine = await lstat(path.join(rootfs, 'home/u/f'));
  expect([mine.uid, mine.gid]).toEqual([SANDBOX_ID_BASE + 1000, SANDBOX_ID_BASE + 1000]);
  expect(await readFile(path.join(rootfs, 'tmp/corral-escape-target/pwned'), 'utf8')).toBe('pwned\n');
  await expect(lstat('/tmp/corral-escape-target')).rejects.toThrow(/ENOENT/);
  await expect(lstat(path.join(rootfs, 'decoy.txt'))).rejects.toThrow(/ENOENT/);
}

async function expectNothingLeft(dir: string) {
  expect((await readdir(dir)).filter((name) => !name.startsWith('.lock-'))).toEqual([]);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'corral-tpl-import-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('importImage', () => {
  it('imports an OCI image layout: amd64 manifest, layers in order, whiteouts, opaque dirs', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true));
    const progress: string[] = [];
    const template = await store.importImage(tar, 'oci-test', { onProgress: (line) => progress.push(line) });
    expect(template.id).toBe(
      templateId({ kind: 'image', name: 'oci-test', tarSha256: await sha256File(tar) }),
    );
    expect(template.rootfs).toBe(path.join(dir, template.id, 'rootfs'));
    expect(progress.filter((line) => line.startsWith('layer '))).toHaveLength(3);
    await expectStandardTree(template.rootfs);
    const record = JSON.parse(await readFile(path.join(dir, template.id, 'template.json'), 'utf8'));
    expect(record.source).toMatchObject({ kind: 'image', imageFormat: 'oci', layers: 3 });
    expect(await readFile(path.join(dir, template.id, 'build.log'), 'utf8')).toContain('layer 3/3');

    // Built once: importing again, or resolving by name or id, returns it without work.
    const again: string[] = [];
    expect(await store.importImage(tar, 'oci-test', { onProgress: (line) => again.push(line) })).toEqual(
      template,
    );
    expect(again).toEqual([]);
    expect(await store.resolve('oci-test')).toEqual(template);
    expect(await store.resolve(template.id)).toEqual(template);
  });

  it('imports a docker save tarball', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeDockerSaveImage(work, await standardLayers(false));
    const template = await store.importImage(tar, 'docker-test');
    await expectStandardTree(template.rootfs);
    const record = JSON.parse(await readFile(path.join(dir, template.id, 'template.json'), 'utf8'));
    expect(record.source).toMatchObject({ kind: 'image', imageFormat: 'docker', layers: 3 });
  });

  it('rejects a blob whose digest does not match, leaving nothing behind', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true), { corrupt: true });
    const error = await store.importImage(tar, 'corrupt').catch((err: unknown) => err);
    expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/digest mismatch/);
    await expectNothingLeft(dir);
    expect(await store.list()).toEqual([]);
  });

  it('rejects an image whose layer blob is missing', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true), { dropFirstLayer: true });
    const error = await store.importImage(tar, 'missing').catch((err: unknown) => err);
    expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
    await expectNothingLeft(dir);
  });

  it('rejects a docker save layer whose content does not match its diff id', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const [first, second] = await standardLayers(false);
    const tar = await makeDockerSaveImage(work, [first!, { ...second!, diffId: first!.diffId }]);
    const error = await store.importImage(tar, 'bad-diff').catch((err: unknown) => err);
    expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
    await expectNothingLeft(dir);
  });

  it('rejects an entry that climbs out with ../ and writes nothing outside', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const marker = `corral-evil-${process.pid}`;
    const good = await makeLayer(work, { files: { 'ok.txt': 'ok\n' } });
    const evil = await makeEscapingLayer(work, `etc/${marker}`);
    for (const tar of [
      await makeOciImage(work, [good, evil]),
      await makeDockerSaveImage(work, [good, evil]),
    ]) {
      const error = await store.importImage(tar, 'evil').catch((err: unknown) => err);
      expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/escapes the tree/);
    }
    await expect(lstat(path.join('/etc', marker))).rejects.toThrow(/ENOENT/);
    await expect(lstat(path.join(dir, 'etc'))).rejects.toThrow(/ENOENT/);
    await expectNothingLeft(dir);
  });

  it('rejects a tarball that is no image', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const plain = await makeLayer(work, { files: { 'hello.txt': 'hi\n' } });
    const tar = path.join(work, 'plain.tar');
    await writeFile(tar, plain.blob);
    const error = await store.importImage(tar, 'plain').catch((err: unknown) => err);
    expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
    await expectNothingLeft(dir);
  });

  it('shares one build between concurrent imports in a process', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true));
    const [a, b] = [[] as string[], [] as string[]];
    const [first, second] = await Promise.all([
      store.importImage(tar, 'shared', { onProgress: (line) => a.push(line) }),
      store.importImage(tar, 'shared', { onProgress: (line) => b.push(line) }),
    ]);
    expect(second).toEqual(first);
    // Both callers watched the same build; a second build would have logged its own unpacking.
    expect(a.filter((line) => line.startsWith('unpacking'))).toHaveLength(1);
    expect(b).toEqual(a.slice(a.length - b.length));
    expect(b.some((line) => line.startsWith('layer 3/3'))).toBe(true);
    const log = await readFile(path.join(dir, first.id, 'build.log'), 'utf8');
    expect(log.match(/^unpacking/gm)).toHaveLength(1);
  });

  it('waits while another live process holds the build lock, and takes over a stale one', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true));
    const id = templateId({ kind: 'image', name: 'locked', tarSha256: await sha256File(tar) });
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const holderExit = new Promise((resolve) => holder.once('exit', resolve));
    await writeFile(path.join(dir, `.lock-${id}`), `${holder.pid}\n`);
    // A leftover from a crashed build of the same template, cleaned once the lock is ours.
    await writeFile(path.join(dir, `.tmp-${id}-crashed`), '');
    const progress: string[] = [];
    let settled = false;
    const importing = store.importImage(tar, 'locked', { onProgress: (line) => progress.push(line) });
    importing.finally(() => {
      settled = true;
    });
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) {
      expect(settled).toBe(false);
      expect(progress).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    holder.kill('SIGKILL');
    await holderExit;
    const template = await importing;
    expect(template.id).toBe(id);
    expect(progress.some((line) => line.startsWith('unpacking'))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([id]);
  });

  it('cleans a crashed build left with a mount inside without deleting through the mount', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeDockerSaveImage(work, [await makeLayer(work, { files: { 'x.txt': 'x\n' } })]);
    const id = templateId({ kind: 'image', name: 'mounted', tarSha256: await sha256File(tar) });
    const hostDir = await mkdtemp(path.join(work, 'host-'));
    await writeFile(path.join(hostDir, 'precious'), 'keep me\n');
    const mountPoint = path.join(dir, `.tmp-${id}-crashed`, 'rootfs', 'proc');
    await mkdir(mountPoint, { recursive: true });
    await execFileAsync('mount', ['--bind', hostDir, mountPoint]);
    // Leftovers of other templates: one abandoned (no lock), one whose build is under way.
    const abandoned = `.tmp-tpl_${'a'.repeat(24)}-crashed`;
    const building = `.tmp-tpl_${'b'.repeat(24)}-running`;
    await mkdir(path.join(dir, abandoned, 'rootfs'), { recursive: true });
    await mkdir(path.join(dir, building, 'rootfs'), { recursive: true });
    await writeFile(path.join(dir, `.lock-tpl_${'b'.repeat(24)}`), `${process.pid}\n`);
    try {
      await store.importImage(tar, 'mounted');
    } finally {
      await execFileAsync('umount', [mountPoint]).catch(() => undefined);
    }
    expect(await readFile(path.join(hostDir, 'precious'), 'utf8')).toBe('keep me\n');
    expect((await readdir(dir)).sort()).toEqual([`.lock-tpl_${'b'.repeat(24)}`, building, id]);
  });

  it('restores file capabilities from layers, owned by the sandbox root', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const layer = await makeLayer(work, {
      files: { 'bin/ping': { content: '#!/bin/sh\n', mode: 0o755 }, 'bin/plain': '#!/bin/sh\n' },
      capabilities: { 'bin/ping': 'cap_net_raw,cap_net_admin=ep' },
    });
    const template = await store.importImage(await makeOciImage(work, [layer]), 'caps');
    const { stdout } = await execFileAsync('getcap', ['-n', '-r', template.rootfs]);
    expect(stdout.trim()).toBe(
      `${path.join(template.rootfs, 'bin/ping')} cap_net_admin,cap_net_raw=ep [rootid=${SANDBOX_ID_BASE}]`,
    );
  });

  it('stops a build when its only caller aborts, leaving nothing', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true));
    const controller = new AbortController();
    const error = await store
      .importImage(tar, 'aborted', { signal: controller.signal, onProgress: () => controller.abort() })
      .catch((err: unknown) => err);
    expect((error as Error).name).toBe('AbortError');
    await expectNothingLeft(dir);
    // A signal aborted before the call starts no build at all.
    const early = await store
      .importImage(tar, 'aborted', { signal: AbortSignal.abort() })
      .catch((err: unknown) => err);
    expect((early as Error).name).toBe('AbortError');
    await expectNothingLeft(dir);
  });

  it('keeps building for the other callers when one of them aborts', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeOciImage(work, await standardLayers(true));
    const controller = new AbortController();
    const seenByQuitter: string[] = [];
    const quitter = store.importImage(tar, 'shared-abort', {
      signal: controller.signal,
      onProgress: (line) => {
        seenByQuitter.push(line);
        controller.abort();
      },
    });
    const stayer = store.importImage(tar, 'shared-abort');
    expect(((await quitter.catch((err: unknown) => err)) as Error).name).toBe('AbortError');
    const template = await stayer;
    await expectStandardTree(template.rootfs);
    expect(seenByQuitter).toHaveLength(1); // no progress after abandoning
  });

  it('lists and removes templates', async () => {
    const dir = await mkdtemp(path.join(work, 'store-'));
    const store = createTemplateStore({ dir });
    const tar = await makeDockerSaveImage(work, [await makeLayer(work, { files: { 'x.txt': 'x\n' } })]);
    const template = await store.importImage(tar, 'removable');
    expect(await store.list()).toEqual([template]);
    await store.remove(template.id);
    expect(await store.list()).toEqual([]);
    await expectNothingLeft(dir);
    const missing = await store.remove(template.id).catch((err: unknown) => err);
    expect(isRuntimeError(missing, 'TEMPLATE_NOT_FOUND')).toBe(true);
    const unknown = await store.resolve('no-such-template').catch((err: unknown) => err);
    expect(isRuntimeError(unknown, 'TEMPLATE_NOT_FOUND')).toBe(true);
  });
});
