import { createHash } from 'node:crypto';
import { access, chmod, chown, mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { DiskPool } from '../local/disk-pool.js';
import { mountPoints } from '../local/proc.js';
import { SANDBOX_ID_BASE } from '../shared/ids.js';
import { lastLine, runCommand } from './runsc.js';

// Host-side filesystem layers of a gvisor sandbox. Generic (no runsc in here): a candidate to
// move next to the local driver's rootfs.ts once it exposes mounting without its C helper.

/** Paths of one sandbox under `<stateDir>/gvisor/<id>/` (that directory is the OCI bundle). */
export interface GvisorPaths {
  dir: string;
  /**
   * Where the sandbox's root is mounted and its resolv.conf copied: `/run/corral-gvisor/<hash>`
   * (0700, owned by host uid 100000). runsc's gofer runs in the sandbox's user namespace as that
   * uid, so it could not traverse a caller's 0700 state dir.
   */
  mountDir: string;
  resolvConf: string;
  record: string;
  config: string;
  processes: string;
  rootfs: string;
  image: string;
  disk: string;
  upper: string;
  work: string;
  checkpoint: string;
}

/** Parent of every sandbox's mountDir. */
export const MOUNT_ROOT = '/run/corral-gvisor';

export function gvisorPaths(root: string, id: string): GvisorPaths {
  const dir = join(root, id);
  const disk = join(dir, 'disk');
  const mountDir = join(MOUNT_ROOT, createHash('sha256').update(dir).digest('hex').slice(0, 20));
  return {
    dir,
    mountDir,
    resolvConf: join(mountDir, 'resolv.conf'),
    record: join(dir, 'sandbox.json'),
    config: join(dir, 'config.json'),
    processes: join(dir, 'processes.json'),
    rootfs: join(mountDir, 'rootfs'),
    image: join(dir, 'disk.img'),
    disk,
    upper: join(disk, 'upper'),
    work: join(disk, 'work'),
    checkpoint: join(dir, 'checkpoint'),
  };
}

async function mustRun(argv: string[], what: string): Promise<void> {
  const result = await runCommand(argv);
  if (result.exitCode !== 0) {
    throw new RuntimeError('INTERNAL', `${what}: ${lastLine(result.stderr) || `exit ${result.exitCode}`}`);
  }
}

/**
 * Mount the sandbox's root: a size-capped ext4 image (sparse, `diskMb`) holds the upper and work
 * dirs, so a disk fill stops at the cap; overlayfs puts them over the template's read-only tree.
 * Idempotent: what is already mounted stays.
 */
export async function mountLayers(
  paths: GvisorPaths,
  lowerDir: string,
  pool: DiskPool,
  diskMb: number,
): Promise<void> {
  const mounts = await mountPoints();
  await mkdir(MOUNT_ROOT, { recursive: true, mode: 0o711 });
  await chmod(MOUNT_ROOT, 0o711);
  // Only the sandbox's root (the gofer, host uid 100000) and host root may enter: other host
  // users must not read the sandbox's files through the mount.
  await mkdir(paths.mountDir, { recursive: true, mode: 0o700 });
  await chown(paths.mountDir, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
  await chmod(paths.mountDir, 0o700);
  if (!mounts.has(paths.rootfs)) await mkdir(paths.rootfs, { recursive: true, mode: 0o711 });
  if (!mounts.has(paths.disk)) {
    await mkdir(paths.disk, { recursive: true, mode: 0o700 });
    const exists = await access(paths.image).then(
      () => true,
      () => false,
    );
    if (!exists) await pool.take(diskMb, paths.image);
    await mustRun(['mount', '-o', 'loop,nodev,nosuid', paths.image, paths.disk], 'mounting the disk image');
  }
  for (const dir of [paths.upper, paths.work]) await mkdir(dir, { recursive: true, mode: 0o755 });
  // The overlay's root takes the upper dir's owner: root inside the sandbox.
  await chown(paths.upper, SANDBOX_ID_BASE, SANDBOX_ID_BASE);
  if (!mounts.has(paths.rootfs)) {
    await mustRun(
      [
        'mount',
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${lowerDir},upperdir=${paths.upper},workdir=${paths.work}`,
        paths.rootfs,
      ],
      'mounting the overlay',
    );
  }
}

/** Unmount only the overlay (before its upper dir is changed underneath: overlayfs forbids that). */
export async function unmountOverlay(paths: GvisorPaths): Promise<void> {
  if ((await mountPoints()).has(paths.rootfs))
    await mustRun(['umount', paths.rootfs], 'unmounting the overlay');
}

/** Unmount the overlay, then the disk image (its loop device autoclears). */
export async function unmountLayers(paths: GvisorPaths): Promise<void> {
  const mounts = await mountPoints();
  for (const point of [paths.rootfs, paths.disk]) {
    if (mounts.has(point)) await mustRun(['umount', point], `unmounting ${point}`);
  }
}

/** Remove a sandbox's directory after unmounting; refuses while anything is still mounted under it. */
export async function removeSandboxDir(paths: GvisorPaths): Promise<void> {
  const mounts = await mountPoints();
  for (const point of mounts) {
    if (point.startsWith(`${paths.dir}/`) || point.startsWith(`${paths.mountDir}/`))
      await mustRun(['umount', '-l', point], `unmounting ${point}`);
  }
  await rm(paths.dir, { recursive: true, force: true });
  const left = await mountPoints();
  if (!left.has(paths.rootfs)) await rm(paths.mountDir, { recursive: true, force: true });
}

/** Bytes used by the upper layer (what the sandbox wrote). */
export async function upperBytes(paths: GvisorPaths): Promise<number> {
  const result = await runCommand(['du', '-sxb', paths.upper]);
  return Number(result.stdout.split('\t')[0]) || 0;
}

/**
 * Remove a sandbox's host cgroup (every v1 controller, and v2) if runsc left it behind — it does
 * when a sandbox failed to start or its sentry was killed. Only empty groups can go; errors ignored.
 */
export async function removeCgroups(cgroupPath: string): Promise<void> {
  // Never the root or a shallow path: everything in these cgroups gets SIGKILL.
  if (!/^\/[^/]+\/[^/]+/.test(cgroupPath) || cgroupPath.includes('..')) {
    throw new RuntimeError('INTERNAL', `refusing to remove cgroup ${JSON.stringify(cgroupPath)}`);
  }
  const controllers = await readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  const dirs = ['', ...controllers.map((c) => `/${c}`)].map((d) => `/sys/fs/cgroup${d}${cgroupPath}`);
  // Whatever runsc left behind (a sentry or gofer whose delete failed under load) dies with its
  // cgroup; an rmdir of a cgroup that still holds processes fails and would leak both.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = new Set<number>();
    for (const dir of dirs) {
      const text = await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line.trim()) pids.add(Number(line));
    }
    if (pids.size === 0 || Date.now() > deadline) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const dir of dirs) await rmdir(dir).catch(() => undefined);
}
