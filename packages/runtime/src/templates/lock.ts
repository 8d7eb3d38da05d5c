import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_INTERVAL_MS = 250;
/** A lock file still empty after this long belongs to a process that died before writing to it. */
const EMPTY_LOCK_STALE_MS = 10_000;
/** Locks this process holds: a lock naming our pid but not in here is a leftover of a reused pid. */
const heldByThisProcess = new Set<string>();

/**
 * A cross-process lock: a file created with O_EXCL holding the owner's pid and start time. A
 * lock whose owner no longer runs (pid gone, or reused by a process started at another time) is
 * stale and taken over. Waits (polling) while a live process holds it. Returns the release.
 */
export async function acquireFileLock(lockPath: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  const me = (await ownerOf(process.pid)) ?? String(process.pid);
  for (;;) {
    signal?.throwIfAborted();
    if (!heldByThisProcess.has(lockPath)) {
      try {
        const handle = await open(lockPath, 'wx', 0o644);
        heldByThisProcess.add(lockPath);
        await handle.writeFile(`${me}\n`);
        await handle.close();
        return async () => {
          heldByThisProcess.delete(lockPath);
          await rm(lockPath, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = (await readFile(lockPath, 'utf8').catch(() => '')).trim();
      if (owner === '' ? await isOldEmptyLock(lockPath) : !(await isOwnerAlive(owner))) {
        // Stale. Remove it only if it still names that owner, then race for it again.
        if ((await readFile(lockPath, 'utf8').catch(() => '')).trim() === owner)
          await rm(lockPath, { force: true });
        continue;
      }
    }
    await sleep(POLL_INTERVAL_MS, undefined, { signal });
  }
}

/** "<pid> <start time in clock ticks since boot>", which names one process even across pid reuse. */
async function ownerOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // Fields after the parenthesised command name; start time is field 22 of the whole line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return `${pid} ${fields[19]}`;
}

async function isOwnerAlive(owner: string): Promise<boolean> {
  const pid = Number.parseInt(owner, 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  // Our own locks are waited on without asking (see heldByThisProcess): this one is a leftover.
  if (pid === process.pid) return false;
  const current = await ownerOf(pid);
  if (current === undefined) return false;
  // A bare pid (no start time) is trusted as long as that pid runs.
  return !owner.includes(' ') || current === owner;
}

async function isOldEmptyLock(lockPath: string): Promise<boolean> {
  const info = await stat(lockPath).catch(() => undefined);
  return info !== undefined && info.size === 0 && Date.now() - info.mtimeMs > EMPTY_LOCK_STALE_MS;
}
