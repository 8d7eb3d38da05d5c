import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxInfo, SnapshotInfo } from '../interface.js';
import type { CgroupDriver } from './cgroups/index.js';
import { archiveUpper, extractArchive } from './snapshot.js';
import { toInfo } from './spec.js';
import type { SandboxPaths, SandboxRecord } from './state.js';

/** What snapshot and restore need from the local driver; they run under the sandbox's lock. */
export interface SnapshotDeps {
  cgroups: CgroupDriver;
  requireRecord: (id: string) => Promise<SandboxRecord>;
  paths: (record: SandboxRecord) => SandboxPaths;
  prepareFs: (record: SandboxRecord) => Promise<void>;
  halt: (record: SandboxRecord, state: 'stopped' | 'hibernated') => Promise<void>;
  boot: (record: SandboxRecord, prepareFs: () => Promise<void>) => Promise<void>;
}

/** Archive the sandbox's upper layer to `destPath`, its writers frozen while it runs. */
export async function snapshotUpper(deps: SnapshotDeps, id: string, destPath: string): Promise<SnapshotInfo> {
  const record = await deps.requireRecord(id);
  const paths = deps.paths(record);
  if (record.state === 'stopped' || record.state === 'hibernated') {
    await deps.prepareFs(record);
  }
  // Freeze writers for a consistent upper layer; thaw whatever happens.
  const freeze = record.state === 'running';
  if (freeze) await deps.cgroups.forSandbox(id).freeze();
  try {
    const { sizeBytes, sha256 } = await archiveUpper(paths.upper, destPath);
    return { path: destPath, sizeBytes, sha256, includesMemory: false, template: record.spec.template };
  } finally {
    if (freeze) await deps.cgroups.forSandbox(id).thaw();
  }
}

/** Replace the sandbox's upper layer with the (validated) archive at `srcPath` and boot it. */
export async function restoreUpper(deps: SnapshotDeps, id: string, srcPath: string): Promise<SandboxInfo> {
  const record = await deps.requireRecord(id);
  if (record.state === 'running' || record.state === 'paused') await deps.halt(record, 'stopped');
  const paths = deps.paths(record);
  await deps.prepareFs(record);
  for (const dir of [paths.upper, paths.work]) {
    for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  await extractArchive(srcPath, paths.upper);
  await deps.boot(record, async () => undefined);
  return toInfo(record);
}
