import type { ProcessInfo, SandboxSpec, SandboxState } from '../interface.js';
import { readJson, writeJsonAtomic } from '../shared/json-file.js';

export { readJson, writeJsonAtomic } from '../shared/json-file.js';

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
