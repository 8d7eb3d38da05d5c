import { access, readFile } from 'node:fs/promises';
import { RuntimeError } from '../errors.js';

/**
 * Check what the local driver needs before the first sandbox, with the fix in each message:
 * root, overlayfs, user namespaces, loop devices and mkfs.ext4 (disk caps), tar, mount.
 */
export async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new RuntimeError(
      'PREREQUISITE_MISSING',
      'The local runtime must run as root (it mounts overlays and manages cgroups)',
      {
        missing: 'root',
      },
    );
  }
  const filesystems = await readFile('/proc/filesystems', 'utf8');
  if (!/\toverlay$/m.test(filesystems)) {
    throw new RuntimeError('PREREQUISITE_MISSING', 'overlayfs is not available: modprobe overlay', {
      missing: 'overlay',
    });
  }
  const maxUserNs = await readFile('/proc/sys/user/max_user_namespaces', 'utf8').catch(() => '1');
  if (Number(maxUserNs) === 0) {
    throw new RuntimeError(
      'PREREQUISITE_MISSING',
      'user namespaces are disabled: sysctl -w user.max_user_namespaces=65536',
      {
        missing: 'userns',
      },
    );
  }
  const loop = await access('/dev/loop-control').then(
    () => true,
    () => false,
  );
  if (!loop) {
    throw new RuntimeError(
      'PREREQUISITE_MISSING',
      'loop devices (for disk caps) are unavailable: modprobe loop',
      {
        missing: 'loop',
      },
    );
  }
  for (const [tool, pkg] of [
    ['/sbin/mkfs.ext4', 'e2fsprogs'],
    ['/bin/tar', 'tar'],
    ['/bin/mount', 'mount'],
  ] as const) {
    const found = await access(tool).then(
      () => true,
      () =>
        access(tool.replace(/^\/(s?bin)/, '/usr/$1')).then(
          () => true,
          () => false,
        ),
    );
    if (!found) {
      throw new RuntimeError('PREREQUISITE_MISSING', `${tool} is missing: apt-get install ${pkg}`, {
        missing: tool,
      });
    }
  }
}
