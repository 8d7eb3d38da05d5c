import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import { archiveUpper, extractArchive, validateArchive } from '../local/snapshot.js';
import type { GvisorPaths } from './layers.js';
import { lastLine, runCommand } from './runsc.js';

// Without memory, a snapshot is exactly the local driver's archive (a compressed tar of the upper
// layer), so either driver restores it. With memory it is an uncompressed tar of three members:
// manifest.json, upper.tar (that same archive) and checkpoint/ (runsc's image, already compressed).
const MANIFEST = 'manifest.json';
const UPPER = 'upper.tar';
const CHECKPOINT = 'checkpoint';
const FORMAT = 'corral-gvisor-memory-snapshot/1';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Write the snapshot of a sandbox whose upper is quiescent (paused or checkpointed). */
export async function snapshotSandbox(
  paths: GvisorPaths,
  destPath: string,
  withMemory: boolean,
): Promise<{ sizeBytes: number; sha256: string }> {
  if (!withMemory) return archiveUpper(paths.upper, destPath);
  const staging = await mkdtemp(join(paths.dir, 'snap-'));
  try {
    await archiveUpper(paths.upper, join(staging, UPPER));
    await writeFile(
      join(staging, MANIFEST),
      JSON.stringify({ format: FORMAT, createdAt: new Date().toISOString() }),
    );
    const tmp = `${destPath}.${process.pid}.tmp`;
    const tar = await runCommand([
      'tar',
      '--numeric-owner',
      '-cf',
      tmp,
      '-C',
      staging,
      MANIFEST,
      UPPER,
      '-C',
      paths.dir,
      CHECKPOINT,
    ]);
    if (tar.exitCode !== 0) throw new RuntimeError('INTERNAL', `snapshot failed: ${lastLine(tar.stderr)}`);
    await rename(tmp, destPath);
    return { sizeBytes: (await stat(destPath)).size, sha256: await sha256File(destPath) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A snapshot checked and unpacked next to the sandbox, ready to replace its layers. */
export interface StagedSnapshot {
  upperArchive: string;
  hasMemory: boolean;
  checkpointDir: string | null;
  cleanup(): Promise<void>;
}

async function isMemorySnapshot(srcPath: string): Promise<boolean> {
  const handle = await open(srcPath, 'r').catch((err) => {
    throw new RuntimeError('SNAPSHOT_INVALID', `cannot read snapshot ${srcPath}: ${(err as Error).message}`);
  });
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    return bytesRead === 512 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await handle.close();
  }
}

/** Stage (validate, unpack) and apply (replace upper, place the checkpoint) a snapshot. */
export const restoreSnapshotFiles = {
  async stage(srcPath: string, paths: GvisorPaths): Promise<StagedSnapshot> {
    if (!(await isMemorySnapshot(srcPath))) {
      await validateArchive(srcPath);
      return { upperArchive: srcPath, hasMemory: false, checkpointDir: null, cleanup: async () => {} };
    }
    const staging = await mkdtemp(join(paths.dir, 'restore-'));
    const cleanup = () => rm(staging, { recursive: true, force: true });
    try {
      const listing = await runCommand(['tar', '-tf', srcPath]);
      const names = listing.stdout.split('\n').filter(Boolean);
      const allowed = (n: string) =>
        n === MANIFEST || n === UPPER || n === `${CHECKPOINT}/` || /^checkpoint\/[A-Za-z0-9._-]+$/.test(n);
      if (listing.exitCode !== 0 || names.length === 0 || !names.every(allowed)) {
        throw new RuntimeError('SNAPSHOT_INVALID', 'not a gvisor memory snapshot');
      }
      const untar = await runCommand(['tar', '--no-same-owner', '-xf', srcPath, '-C', staging]);
      if (untar.exitCode !== 0)
        throw new RuntimeError('SNAPSHOT_INVALID', `unreadable snapshot: ${lastLine(untar.stderr)}`);
      const manifest = JSON.parse(await readFile(join(staging, MANIFEST), 'utf8')) as { format?: string };
      if (manifest.format !== FORMAT) throw new RuntimeError('SNAPSHOT_INVALID', 'unknown snapshot format');
      const upperArchive = join(staging, UPPER);
      await validateArchive(upperArchive);
      return { upperArchive, hasMemory: true, checkpointDir: join(staging, CHECKPOINT), cleanup };
    } catch (err) {
      await cleanup();
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError('SNAPSHOT_INVALID', `unreadable snapshot: ${(err as Error).message}`);
    }
  },

  /** The sandbox is halted and its layers mounted: empty upper and work, unpack, place the image. */
  async apply(staged: StagedSnapshot, paths: GvisorPaths): Promise<void> {
    for (const dir of [paths.upper, paths.work]) {
      for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
    }
    await extractArchive(staged.upperArchive, paths.upper);
    await rm(paths.checkpoint, { recursive: true, force: true });
    if (staged.checkpointDir) {
      await mkdir(paths.checkpoint, { mode: 0o700 });
      for (const entry of await readdir(staged.checkpointDir)) {
        await rename(join(staged.checkpointDir, entry), join(paths.checkpoint, entry));
      }
    }
  },
};

/** Peak memory of a sandbox's host cgroup (v1 or v2), 0 when unreadable. */
export async function readCgroupMemory(cgroupPath: string): Promise<{ peakBytes: number }> {
  for (const file of [
    `/sys/fs/cgroup/memory${cgroupPath}/memory.max_usage_in_bytes`,
    `/sys/fs/cgroup${cgroupPath}/memory.peak`,
  ]) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text) return { peakBytes: Number(text.trim()) || 0 };
  }
  return { peakBytes: 0 };
}
