import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_INTERVAL_MS = 250;
/** A lock file still empty after this long belongs to a process that died before writing its pid. */
const EMPTY_LOCK_STALE_MS = 10_000;

/**
 * A cross-process lock: a file created with O_EXCL holding the owner's pid. A lock whose pid no
 * longer runs is stale and taken over. Waits (polling) while another live process holds it.
 * Returns the release function.
 */
export async function acquireFileLock(lockPath: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      const handle = await open(lockPath, 'wx', 0o644);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readLockOwner(lockPath);
    if (owner !== undefined && !isProcessAlive(owner)) {
      // Stale: its owner died. Remove it only if it still names that owner, then race again.
      if ((await readLockOwner(lockPath)) === owner) await rm(lockPath, { force: true });
      continue;
    }
    if (owner === undefined && (await isOldEmptyLock(lockPath))) {
      await rm(lockPath, { force: true });
      continue;
    }
    await sleep(POLL_INTERVAL_MS, undefined, { signal });
  }
}

async function readLockOwner(lockPath: string): Promise<number | undefined> {
  const text = await readFile(lockPath, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  // A lock file caught between create and write is empty: treat it as held, not stale.
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function isOldEmptyLock(lockPath: string): Promise<boolean> {
  const info = await stat(lockPath).catch(() => undefined);
  return info !== undefined && info.size === 0 && Date.now() - info.mtimeMs > EMPTY_LOCK_STALE_MS;
}

function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
