import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxSpec, SandboxState } from '../interface.js';

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
  /** True when the upper dir lives in a size-capped ext4 image (resources.diskMb > 0). */
  diskImage: boolean;
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
  image: string;
  disk: string;
  upper: string;
  work: string;
  hosts: string;
}

export function sandboxPaths(stateDir: string, id: string, diskImage: boolean): SandboxPaths {
  const dir = join(stateDir, 'sandboxes', id);
  const layers = diskImage ? join(dir, 'disk') : dir;
  return {
    dir,
    state: join(dir, 'state.json'),
    processes: join(dir, 'processes.json'),
    rootfs: join(dir, 'rootfs'),
    image: join(dir, 'disk.img'),
    disk: join(dir, 'disk'),
    upper: join(layers, 'upper'),
    work: join(layers, 'work'),
    hosts: join(dir, 'hosts'),
  };
}

/** Write a JSON file atomically (temp file + rename), mode 0600. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2), { mode: 0o600 });
  await rename(tmp, path);
}

export async function readRecord(path: string): Promise<SandboxRecord | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as SandboxRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Every sandbox id with a state.json under `<stateDir>/sandboxes`. */
export async function listRecordIds(stateDir: string): Promise<string[]> {
  const root = join(stateDir, 'sandboxes');
  await mkdir(root, { recursive: true, mode: 0o700 });
  return readdir(root);
}
