import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxSpec, SandboxState } from '../interface.js';
import { readJson } from '../shared/json-file.js';

/** What the local driver persists per sandbox in `<stateDir>/sandboxes/<id>/state.json` (0600: env holds secrets). */
export interface SandboxRecord {
  version: 1;
  spec: SandboxSpec;
  state: SandboxState;
  createdAt: string;
  error?: string;
  templateId: string;
  /** The template's rootfs: the overlay's lowerdir. */
  lowerDir: string;
  /** The size-capped disk (a DiskStore name) holding upper/work; null when resources.diskMb is 0. */
  diskId: string | null;
  /** The running init (host pid + /proc start time, to survive pid reuse). */
  init: { pid: number; startTime: string } | null;
  network: { netnsPath: string; resolvConf: string | null } | null;
}

/** Paths of one sandbox's on-disk state. */
export interface SandboxPaths {
  dir: string;
  state: string;
  processes: string;
  rootfs: string;
  /** Mount point of the disk image when there is one. */
  disk: string | null;
  upper: string;
  work: string;
  hosts: string;
}

/** Where the DiskPool keeps images and their mounts. */
export function disksDir(stateDir: string): string {
  return join(stateDir, 'disks');
}

export function sandboxPaths(stateDir: string, id: string, diskId: string | null): SandboxPaths {
  const dir = join(stateDir, 'sandboxes', id);
  const disk = diskId ? join(disksDir(stateDir), diskId) : null;
  const layers = disk ?? dir;
  return {
    dir,
    state: join(dir, 'state.json'),
    processes: join(dir, 'processes.json'),
    rootfs: join(dir, 'rootfs'),
    disk,
    upper: join(layers, 'upper'),
    work: join(layers, 'work'),
    hosts: join(dir, 'hosts'),
  };
}

export { writeJsonAtomic } from '../shared/json-file.js';

export function readRecord(path: string): Promise<SandboxRecord | null> {
  return readJson<SandboxRecord>(path);
}

/** Every sandbox id with a state.json under `<stateDir>/sandboxes`. */
export async function listRecordIds(stateDir: string): Promise<string[]> {
  const root = join(stateDir, 'sandboxes');
  await mkdir(root, { recursive: true, mode: 0o700 });
  return readdir(root);
}
