import { chown, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SANDBOX_ID_BASE } from '../shared/ids.js';
import { mountPoints, run } from './proc.js';
import type { SandboxPaths } from './state.js';

/**
 * Make the upper/work dirs ready. With a disk cap the upper dir lives in a sparse ext4 image of
 * exactly `diskMb` mounted from a loop device, so a disk-fill inside stops at the cap (ENOSPC)
 * and never fills the host; the image is created once (mkfs ≈ 6 ms, loop mount ≈ 9 ms here).
 */
export async function prepareLayers(paths: SandboxPaths, diskMb: number, diskImage: boolean): Promise<void> {
  await mkdir(paths.rootfs, { recursive: true, mode: 0o700 });
  if (diskImage) {
    const mounts = await mountPoints();
    if (!mounts.has(paths.disk)) {
      await mkdir(paths.disk, { recursive: true, mode: 0o700 });
      let created = false;
      try {
        const handle = await open(paths.image, 'wx', 0o600);
        await handle.truncate(diskMb * 1024 * 1024);
        await handle.close();
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (created) {
        await run('mkfs.ext4', [
          '-q',
          '-F',
          '-m',
          '0',
          '-O',
          '^resize_inode',
          '-E',
          'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
          paths.image,
        ]);
      }
      await run('mount', ['-o', 'loop,nodev,nosuid', paths.image, paths.disk]);
    }
  }
  for (const dir of [paths.upper, paths.work]) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  }
  // The overlay's root takes the upper dir's owner: root inside the sandbox.
  await chown(paths.upper, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
}

/** Write /etc/hostname and /etc/hosts into a fresh upper dir (owned by the sandbox's root). */
export async function writeIdentity(paths: SandboxPaths, hostname: string): Promise<void> {
  const etc = join(paths.upper, 'etc');
  await mkdir(etc, { mode: 0o755 });
  await chown(etc, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
  const files: Record<string, string> = {
    hostname: `${hostname}\n`,
    hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`,
  };
  for (const [name, content] of Object.entries(files)) {
    const path = join(etc, name);
    await writeFile(path, content, { mode: 0o644, flag: 'wx' });
    await chown(path, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
  }
}

/** Lazily unmount the overlay and, when present, the disk image (its loop device autoclears). */
export async function unmountLayers(helper: string, paths: SandboxPaths): Promise<void> {
  const mounts = await mountPoints();
  for (const point of [paths.rootfs, paths.disk]) {
    if (mounts.has(point)) await run(helper, ['umount', point]);
  }
}

/** Remove a sandbox's directory tree (after unmounting). */
export async function removeSandboxDir(paths: SandboxPaths): Promise<void> {
  await rm(paths.dir, { recursive: true, force: true });
}

/** Bytes used by the upper layer (what the sandbox wrote). */
export async function upperBytes(paths: SandboxPaths): Promise<number> {
  const out = await run('du', ['-sxb', paths.upper]).catch(() => '0');
  return Number(out.split('\t')[0]) || 0;
}
