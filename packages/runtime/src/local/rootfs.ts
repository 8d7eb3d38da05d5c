import { access, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SANDBOX_ID_BASE } from '../shared/ids.js';
import type { DiskPool } from './disk-pool.js';
import { mountPoints, run } from './proc.js';
import type { SandboxPaths } from './state.js';

/**
 * Make the upper/work dirs ready. With a disk cap the upper dir lives in a sparse ext4 image of
 * exactly `diskMb` on a loop device, so a disk fill inside stops at the cap (ENOSPC) and never
 * fills the host. Images come formatted from the pool; the helper attaches and mounts them.
 */
export async function prepareLayers(
  helper: string,
  pool: DiskPool,
  paths: SandboxPaths,
  diskMb: number,
  diskImage: boolean,
): Promise<void> {
  await mkdir(paths.rootfs, { recursive: true, mode: 0o700 });
  if (diskImage) {
    const mounts = await mountPoints();
    if (!mounts.has(paths.disk)) {
      await mkdir(paths.disk, { recursive: true, mode: 0o700 });
      const exists = await access(paths.image).then(
        () => true,
        () => false,
      );
      if (!exists) await pool.take(diskMb, paths.image);
      await run(helper, ['mountimg', paths.image, paths.disk]);
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

/**
 * Unmount the overlay, then the disk image (its loop device autoclears). Strict by default (the
 * image may be mounted again right after); `lazy` for destroy, where nothing is reused.
 */
export async function unmountLayers(
  helper: string,
  paths: SandboxPaths,
  options: { lazy?: boolean } = {},
): Promise<void> {
  const mounts = await mountPoints();
  for (const point of [paths.rootfs, paths.disk]) {
    if (mounts.has(point)) await run(helper, ['umount', point, ...(options.lazy ? ['--lazy'] : [])]);
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
