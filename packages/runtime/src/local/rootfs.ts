import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SANDBOX_ID_BASE } from '../shared/ids.js';
import type { DiskStore } from './disks.js';
import { mountPoints, run } from './proc.js';
import type { SandboxPaths } from './state.js';

/**
 * Make the layers ready: mount the sandbox's disk image when it has one (see DiskStore), else
 * make upper/work in the sandbox dir.
 */
export async function prepareLayers(
  pool: DiskStore,
  paths: SandboxPaths,
  diskId: string | null,
): Promise<void> {
  await mkdir(paths.rootfs, { recursive: true, mode: 0o700 });
  if (diskId) {
    await pool.mount(diskId);
    return;
  }
  for (const dir of [paths.upper, paths.work]) await mkdir(dir, { recursive: true, mode: 0o755 });
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
    if (!point) continue;
    if (mounts.has(point)) await run(helper, ['umount', point, ...(options.lazy ? ['--lazy'] : [])]);
  }
}

/** Remove a sandbox's directory tree (after unmounting). */
export async function removeSandboxDir(paths: SandboxPaths): Promise<void> {
  await rm(paths.dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Bytes used by the upper layer (what the sandbox wrote). */
export async function upperBytes(paths: SandboxPaths): Promise<number> {
  const out = await run('du', ['-sxb', paths.upper]).catch(() => '0');
  return Number(out.split('\t')[0]) || 0;
}
