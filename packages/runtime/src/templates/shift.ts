import { execFile } from 'node:child_process';
import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from '../shared/ids.js';

const execFileAsync = promisify(execFile);
/** Ids outside the sandbox's range land on nobody/nogroup, as the kernel's overflow id does. */
const OVERFLOW_ID = 65_534;
const PARALLEL_ENTRIES = 32;

/** Host id for an id seen inside the sandbox. */
export function shiftId(id: number): number {
  return SANDBOX_ID_BASE + (id >= 0 && id < SANDBOX_ID_COUNT ? id : OVERFLOW_ID);
}

/**
 * Shift every entry of `root` (root included) into the sandbox id range: uid/gid + 100000.
 * chown clears setuid/setgid bits and file capabilities, so both are put back afterwards;
 * capabilities are rewritten as namespaced (v3) ones owned by the sandbox's root, so they still
 * apply inside the user namespace. Returns the tree's size in bytes (hard links counted once).
 */
export async function shiftTree(root: string): Promise<{ sizeBytes: number; entries: number }> {
  const capabilities = await readCapabilities(root);
  const seenInodes = new Set<string>();
  let sizeBytes = 0;
  let entries = 0;

  const shiftEntry = async (entryPath: string): Promise<boolean> => {
    const stat = await lstat(entryPath);
    entries += 1;
    if (stat.nlink > 1 && !stat.isDirectory()) {
      const key = `${stat.dev}:${stat.ino}`;
      if (seenInodes.has(key)) return false;
      seenInodes.add(key);
    }
    sizeBytes += stat.size;
    await lchown(entryPath, shiftId(stat.uid), shiftId(stat.gid));
    if (!stat.isSymbolicLink() && (stat.mode & 0o6000) !== 0) await chmod(entryPath, stat.mode & 0o7777);
    return stat.isDirectory();
  };

  // Breadth-first with bounded parallelism: fast on trees of tens of thousands of entries.
  let pending: string[] = [root];
  await shiftEntry(root);
  while (pending.length > 0) {
    const directories = pending;
    pending = [];
    const children: string[] = [];
    for (const dir of directories) {
      for (const name of await readdir(dir)) children.push(path.join(dir, name));
    }
    for (let i = 0; i < children.length; i += PARALLEL_ENTRIES) {
      const batch = children.slice(i, i + PARALLEL_ENTRIES);
      const isDir = await Promise.all(batch.map(shiftEntry));
      batch.forEach((child, j) => {
        if (isDir[j]) pending.push(child);
      });
    }
  }

  for (const { file, caps } of capabilities) {
    await execFileAsync('setcap', ['-n', String(SANDBOX_ID_BASE), caps, file]);
  }
  return { sizeBytes, entries };
}

/** Files under `root` that carry capabilities, as `getcap -r` reports them. */
async function readCapabilities(root: string): Promise<{ file: string; caps: string }[]> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('getcap', ['-r', root], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    // No getcap means no libcap2-bin on the host, hence no way to have set capabilities either.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return stdout
    .split('\n')
    .map((line) => /^(\/.*) (\S+)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ file: match[1]!, caps: match[2]! }));
}
