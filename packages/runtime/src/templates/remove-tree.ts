import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * `rm -rf dir`, but first detach anything mounted inside it: a build killed hard can leave
 * mmdebstrap's /proc and /sys mounts behind, and a recursive delete must never walk into them.
 */
export async function removeTree(dir: string): Promise<void> {
  const mounts = await mountPointsUnder(dir);
  // Deepest first.
  for (const mountPoint of mounts.sort((a, b) => b.length - a.length)) {
    await execFileAsync('umount', ['--lazy', mountPoint]).catch(() => undefined);
  }
  const remaining = await mountPointsUnder(dir);
  if (remaining.length > 0) throw new Error(`refusing to delete ${dir}: ${remaining[0]} is still mounted`);
  await rm(dir, { recursive: true, force: true });
}

async function mountPointsUnder(dir: string): Promise<string[]> {
  const prefix = `${path.resolve(dir)}/`;
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map(unescapeMountPath)
    .filter((mountPoint) => mountPoint.startsWith(prefix));
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
