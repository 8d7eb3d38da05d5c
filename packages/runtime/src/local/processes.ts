import { readFile } from 'node:fs/promises';
import type { ProcessInfo } from '../interface.js';
import type { StartedProcess } from './exec.js';
import { processStartTime } from './proc.js';
import { writeJsonAtomic } from './state.js';

const PERSIST_DELAY_MS = 20;

interface Tracked {
  pid: number;
  hostPid: number;
  /** /proc start time of hostPid, so a reused pid is never mistaken for ours. */
  hostStartTime: string | null;
  command: string;
  args: string[];
  startedAt: string;
  tty: boolean;
}

/**
 * Processes started through exec/pty, per sandbox, persisted to `processes.json` (written in the
 * background, coalesced) so a restarted control plane can still list and signal them.
 */
export class ProcessTable {
  private readonly bySandbox = new Map<string, Map<number, Tracked>>();
  private readonly writing = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  /** What `processes.json` holds now, per sandbox: an unchanged table is not written again. */
  private readonly written = new Map<string, string>();
  /** Cut a sandbox's pending coalescing delay short (flush). */
  private readonly wakers = new Map<string, () => void>();

  constructor(private readonly fileOf: (sandboxId: string) => string) {}

  async load(id: string): Promise<void> {
    try {
      const text = await readFile(this.fileOf(id), 'utf8');
      const list = JSON.parse(text) as Tracked[];
      this.bySandbox.set(id, new Map(list.map((p) => [p.pid, p])));
      this.written.set(id, JSON.stringify(list));
    } catch {
      // none recorded
    }
  }

  add(id: string, started: StartedProcess, meta: { command: string; args: string[]; tty: boolean }): void {
    const table = this.bySandbox.get(id) ?? new Map<number, Tracked>();
    this.bySandbox.set(id, table);
    const entry: Tracked = {
      pid: started.pid,
      hostPid: started.hostPid,
      hostStartTime: started.startTime === '0' ? null : started.startTime,
      startedAt: new Date().toISOString(),
      ...meta,
    };
    table.set(started.pid, entry);
    this.persist(id);
    void started.exited.then(() => {
      if (table.get(started.pid) === entry) table.delete(started.pid);
      this.persist(id);
    });
  }

  async list(id: string): Promise<ProcessInfo[]> {
    const out: ProcessInfo[] = [];
    for (const p of await this.alive(id)) {
      out.push({ pid: p.pid, command: p.command, args: [...p.args], startedAt: p.startedAt, tty: p.tty });
    }
    return out;
  }

  async find(id: string, pid: number): Promise<Tracked | undefined> {
    return (await this.alive(id)).find((p) => p.pid === pid);
  }

  forget(id: string): void {
    this.bySandbox.delete(id);
    this.persist(id);
  }

  /** Write every pending table now (close, destroy, restore) without waiting out the delay. */
  async flush(): Promise<void> {
    for (const wake of this.wakers.values()) wake();
    await Promise.all(this.writing.values());
  }

  private async alive(id: string): Promise<Tracked[]> {
    const table = this.bySandbox.get(id);
    if (!table) return [];
    const out: Tracked[] = [];
    for (const p of table.values()) {
      const start = await processStartTime(p.hostPid);
      if (start !== null && (p.hostStartTime === null || p.hostStartTime === start)) out.push(p);
      else table.delete(p.pid);
    }
    return out;
  }

  private persist(id: string): void {
    this.dirty.add(id);
    if (this.writing.has(id)) return;
    const run = async () => {
      // Coalesce a burst of execs into one write, and wait again before the next: at most one
      // write per PERSIST_DELAY_MS per sandbox; a crash loses at most this window of tracking.
      while (this.dirty.has(id)) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, PERSIST_DELAY_MS);
          this.wakers.set(id, () => {
            clearTimeout(timer);
            resolve();
          });
        });
        this.wakers.delete(id);
        this.dirty.delete(id);
        const table = this.bySandbox.get(id);
        const list = table ? [...table.values()] : [];
        const text = JSON.stringify(list);
        // An exec that started and ended inside the window changes nothing on disk.
        if (text === this.written.get(id)) continue;
        this.written.set(id, text);
        await writeJsonAtomic(this.fileOf(id), list).catch(() => this.written.delete(id));
      }
      this.writing.delete(id);
    };
    this.writing.set(id, run());
  }
}
