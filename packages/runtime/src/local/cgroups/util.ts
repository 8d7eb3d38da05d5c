import { readFile, rmdir, writeFile } from 'node:fs/promises';

export async function readText(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

export async function readNumber(path: string): Promise<number> {
  try {
    const n = Number(await readText(path));
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

export async function write(path: string, value: string | number): Promise<void> {
  await writeFile(path, String(value));
}

export async function readPids(procsFile: string): Promise<number[]> {
  try {
    return (await readText(procsFile)).split('\n').filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Poll `check` every few ms until it is true or `timeoutMs` passes. */
export async function pollUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delayMs = 1;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 50);
  }
}

/** rmdir a cgroup directory, retrying while the kernel still reports it busy. */
export async function removeCgroupDir(dir: string): Promise<void> {
  await pollUntil(
    async () => {
      try {
        await rmdir(dir);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return true;
        if (code === 'EBUSY') return false;
        throw err;
      }
    },
    5_000,
    `cgroup ${dir} to be removable`,
  );
}

export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
