import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ProcessInfo, SandboxSpec, SandboxState } from '../interface.js';

/** What the driver persists per sandbox in `<stateDir>/gvisor/<id>/sandbox.json` (0600: env holds secrets). */
export interface GvisorRecord {
  version: 1;
  spec: SandboxSpec;
  /** The state the driver last put the sandbox in; runsc's own state wins for running/paused. */
  state: SandboxState;
  createdAt: string;
  error?: string;
  templateId: string;
  lowerDir: string;
  network: { netnsPath: string; resolvConf: string } | null;
  /** A checkpoint image (memory) waits in `checkpoint/` to be restored by resume/start. */
  checkpointed: boolean;
}

/** Write a JSON file atomically (temp file + rename), mode 0600. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2), { mode: 0o600 });
  await rename(tmp, path);
}

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * API-started processes of each sandbox, kept in `processes.json` so that a new control plane
 * sees them; the live set is what `runsc ps` still shows. Writes are serialized per file.
 */
export class ProcessTable {
  private readonly chains = new Map<string, Promise<unknown>>();

  private update(path: string, change: (list: ProcessInfo[]) => ProcessInfo[]): Promise<void> {
    const previous = this.chains.get(path) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const list = (await readJson<ProcessInfo[]>(path)) ?? [];
        await writeJsonAtomic(path, change(list));
      });
    this.chains.set(path, next);
    return next;
  }

  add(path: string, info: ProcessInfo): Promise<void> {
    return this.update(path, (list) => [...list.filter((p) => p.pid !== info.pid), info]);
  }

  remove(path: string, pid: number): Promise<void> {
    return this.update(path, (list) => list.filter((p) => p.pid !== pid));
  }

  /** Keep only the pids in `alive` (drop entries of processes that died unobserved). */
  prune(path: string, alive: Set<number>): Promise<void> {
    return this.update(path, (list) => list.filter((p) => alive.has(p.pid)));
  }

  async read(path: string): Promise<ProcessInfo[]> {
    await (this.chains.get(path) ?? Promise.resolve()).catch(() => undefined);
    return (await readJson<ProcessInfo[]>(path)) ?? [];
  }
}
