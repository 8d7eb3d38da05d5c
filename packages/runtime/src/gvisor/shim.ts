import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RuntimeError } from '../errors.js';

const execFileAsync = promisify(execFile);

// Preloaded (/etc/ld.so.preload) into every dynamically linked process of a sandbox:
// 1. gVisor of 2022 (Debian's runsc) rejects statx(2) with AT_NO_AUTOMOUNT as EINVAL, and
//    coreutils 9 passes that flag: `ls -l`, `stat`, `cp -a` … would all fail. The wrapper drops it
//    (a no-op in gVisor, which has no automounts).
// 2. A seccomp filter, installed once per process tree (filters are inherited), refuses new user
//    namespaces (unshare; clone with CLONE_NEWUSER; clone3, whose flags cannot be filtered, is
//    ENOSYS so libc falls back to clone), as Docker's default profile does. gVisor's user
//    namespaces live in its own kernel, never the host's; this keeps the surface small anyway.
//    `runsc exec` applies no OCI seccomp profile to the processes it starts, hence here.
const SHIM_SOURCE = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

static struct sock_filter corral_filter[] = {
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435 /* clone3 */, 0, 1),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
  BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x10000000 /* CLONE_NEWUSER */, 0, 1),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

__attribute__((constructor)) static void corral_filter_install(void) {
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2) return;
  struct sock_fprog prog = { sizeof corral_filter / sizeof corral_filter[0], corral_filter };
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
`;

/** Where the preload shim appears inside a sandbox (a tmpfs: nothing lands in the upper layer). */
export const SHIM_SANDBOX_PATH = '/dev/.corral-statx.so';

export interface StatxShim {
  /** Host path of the compiled shared object. */
  library: string;
  /** Host path of the ld.so.preload naming SHIM_SANDBOX_PATH. */
  preload: string;
}

const building = new Map<string, Promise<StatxShim>>();

/** Compile (once, cached by source hash) the statx shim into `dir`, which must be world-traversable. */
export function ensureStatxShim(dir: string): Promise<StatxShim> {
  let pending = building.get(dir);
  if (!pending) {
    pending = buildShim(dir);
    building.set(dir, pending);
    pending.catch(() => building.delete(dir));
  }
  return pending;
}

async function buildShim(dir: string): Promise<StatxShim> {
  const hash = createHash('sha256').update(SHIM_SOURCE).digest('hex').slice(0, 16);
  const library = join(dir, `corral-statx-${hash}.so`);
  const preload = join(dir, 'ld.so.preload');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  await writeFile(preload, `${SHIM_SANDBOX_PATH}\n`, { mode: 0o644 });
  const exists = await access(library).then(
    () => true,
    () => false,
  );
  if (exists) return { library, preload };
  const source = join(dir, `corral-statx-${hash}.c`);
  const tmp = `${library}.${process.pid}.tmp`;
  await writeFile(source, SHIM_SOURCE);
  try {
    await execFileAsync('cc', ['-O2', '-shared', '-fPIC', '-o', tmp, source]);
    await chmod(tmp, 0o644);
    await rename(tmp, library);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RuntimeError(
        'PREREQUISITE_MISSING',
        'The gvisor runtime compiles a small statx shim and needs a C compiler: apt-get install gcc',
        { missing: 'cc' },
      );
    }
    throw new RuntimeError('INTERNAL', `compiling the statx shim failed: ${String(err)}`, {}, { cause: err });
  } finally {
    await rm(source, { force: true });
  }
  return { library, preload };
}
