import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_ID_BASE } from '../../src/shared/ids.js';
import { createTemplateStore } from '../../src/templates/index.js';
import type { Template } from '../../src/templates/interface.js';
import { testTemplateDir } from './dir.js';

describe('built-in base template', () => {
  const store = createTemplateStore({ dir: testTemplateDir() });
  let base: Template;

  beforeAll(async () => {
    base = await store.resolve('base');
  });

  it('is a Debian tree with bash and the sandbox user', async () => {
    expect(base.id).toMatch(/^tpl_[0-9a-f]{24}$/);
    expect(base.name).toBe('base');
    expect(base.rootfs).toBe(path.join(testTemplateDir(), base.id, 'rootfs'));
    expect(base.sizeBytes).toBeGreaterThan(50_000_000);
    expect((await stat(path.join(base.rootfs, 'usr/bin/bash'))).isFile()).toBe(true);
    for (const tool of ['git', 'curl', 'sudo', 'ps', 'ip', 'less', 'tar', 'gzip', 'find']) {
      await expect(
        lstat(path.join(base.rootfs, 'usr/bin', tool)).catch(() =>
          lstat(path.join(base.rootfs, 'usr/sbin', tool)),
        ),
      ).resolves.toBeTruthy();
    }
    const passwd = await readFile(path.join(base.rootfs, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^user:x:1000:1000::\/home\/user:\/bin\/bash$/m);
    expect(await readFile(path.join(base.rootfs, 'etc/sudoers.d/90-user'), 'utf8')).toContain('NOPASSWD:ALL');
    expect(await readFile(path.join(base.rootfs, 'etc/hostname'), 'utf8')).toBe('corral\n');
    expect(await readFile(path.join(base.rootfs, 'etc/hosts'), 'utf8')).toMatch(
      /^127\.0\.0\.1\s+localhost$/m,
    );
    expect(await readdir(path.join(base.rootfs, 'var/lib/apt/lists'))).toEqual(['partial']);
  });

  it('stores files shifted into the sandbox id range, keeping setuid bits', async () => {
    const root = await lstat(base.rootfs);
    expect([root.uid, root.gid]).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE]);
    const bash = await lstat(path.join(base.rootfs, 'usr/bin/bash'));
    expect(bash.uid).toBe(SANDBOX_ID_BASE);
    const home = await lstat(path.join(base.rootfs, 'home/user'));
    expect([home.uid, home.gid]).toEqual([SANDBOX_ID_BASE + 1000, SANDBOX_ID_BASE + 1000]);
    const bashrc = await lstat(path.join(base.rootfs, 'home/user/.bashrc'));
    expect(bashrc.uid).toBe(SANDBOX_ID_BASE + 1000);
    const sudo = await lstat(path.join(base.rootfs, 'usr/bin/sudo'));
    expect(sudo.uid).toBe(SANDBOX_ID_BASE);
    expect(sudo.mode & 0o7777).toBe(0o4755);
    const shadow = await lstat(path.join(base.rootfs, 'etc/shadow'));
    expect(shadow.gid).toBeGreaterThan(SANDBOX_ID_BASE); // group shadow, shifted
  });

  it('is built once: a second resolve returns the same template at once', async () => {
    const store2 = createTemplateStore({ dir: testTemplateDir() });
    const lines: string[] = [];
    const again = await store2.resolve('base', { onProgress: (line) => lines.push(line) });
    expect(again).toEqual(base);
    expect(lines).toEqual([]);
    expect(await store.resolve(base.id)).toEqual(base);
    expect((await store.list()).map((t) => t.id)).toContain(base.id);
  });

  it('shares one resolve between concurrent callers', async () => {
    const fresh = createTemplateStore({ dir: testTemplateDir() });
    const [a, b, c] = await Promise.all([
      fresh.resolve('base'),
      fresh.resolve('base'),
      fresh.resolve(base.id),
    ]);
    expect([a, b, c]).toEqual([base, base, base]);
  });

  it('lists the built-in names', () => {
    expect(store.builtins).toEqual(['base', 'python', 'nodejs', 'go', 'gui']);
  });
});
