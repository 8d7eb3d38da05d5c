import { constants } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type {
  ExecProcess,
  ExecRequest,
  ProcessInfo,
  PtyProcess,
  PtyRequest,
  SandboxState,
} from '../interface.js';
import { buildExecArgs } from '../local/env.js';
import { SANDBOX_USER_HOME } from '../shared/ids.js';
import { buildProcessJson } from './bundle.js';
import { type ExecTarget, startExec, startPty } from './exec.js';
import { runScriptInside, shellQuote, withProcessLimit } from './inside.js';
import type { GvisorPaths } from './layers.js';
import { runCommand } from './runsc.js';
import { type GvisorRecord, ProcessTable } from './state.js';

/** What the process operations need from the driver. */
export interface SandboxAccess {
  requireRecord(id: string): Promise<GvisorRecord>;
  liveState(record: GvisorRecord): Promise<SandboxState>;
  argv(record: GvisorRecord, args: string[]): string[];
  /** runsc's container id of a sandbox. */
  cid(id: string): string;
  paths(id: string): GvisorPaths;
}

/** exec, pty, the tracked-process list and signals, all through `runsc exec|kill|ps`. */
export class SandboxProcesses {
  private readonly procs = new ProcessTable();

  constructor(private readonly access: SandboxAccess) {}

  async exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    const { record, target, processJson, timeoutMs } = await this.prepareExec(id, request, false);
    const proc = await startExec(target, processJson, timeoutMs);
    if (proc.pid > 0) await this.track(record, proc.pid, request, false);
    return proc;
  }

  async pty(id: string, request: PtyRequest): Promise<PtyProcess> {
    const { record, target, processJson, timeoutMs } = await this.prepareExec(id, request, true);
    const size = { cols: request.cols || 80, rows: request.rows || 24 };
    const proc = await startPty(
      target,
      { ...processJson, consoleSize: { width: size.cols, height: size.rows } },
      size,
      timeoutMs,
    );
    if (proc.pid > 0) await this.track(record, proc.pid, request, true);
    return proc;
  }

  async list(id: string): Promise<ProcessInfo[]> {
    const record = await this.access.requireRecord(id);
    const file = this.access.paths(id).processes;
    if (
      (await this.access.liveState(record)) !== 'running' &&
      (await this.access.liveState(record)) !== 'paused'
    )
      return [];
    const alive = await this.livePids(record);
    await this.procs.prune(file, alive);
    return (await this.procs.read(file)).filter((p) => alive.has(p.pid));
  }

  async signal(id: string, pid: number, signal: NodeJS.Signals): Promise<void> {
    const record = await this.access.requireRecord(id);
    const number = constants.signals[signal];
    if (number === undefined) throw new RuntimeError('INVALID_ARGUMENT', `unknown signal ${signal}`);
    const listed = await this.list(id);
    if (!listed.some((p) => p.pid === pid)) {
      throw new RuntimeError('PROCESS_NOT_FOUND', `no process ${pid} in sandbox ${id}`, { id, pid });
    }
    const result = await runCommand(
      this.access.argv(record, ['kill', '--pid', String(pid), this.access.cid(id), String(number)]),
    );
    if (result.exitCode !== 0) {
      throw new RuntimeError('PROCESS_NOT_FOUND', `no process ${pid} in sandbox ${id}`, { id, pid });
    }
  }

  private async prepareExec(id: string, request: ExecRequest, tty: boolean) {
    const record = await this.access.requireRecord(id);
    const state = await this.access.liveState(record);
    if (state !== 'running') {
      throw new RuntimeError('INVALID_STATE', `sandbox ${id} is ${state}`, { id, state });
    }
    const args = buildExecArgs(record.spec, request, tty);
    const argv = [args.command, ...args.args];
    const processJson = buildProcessJson({
      // runsc can only lend the host's tty, which is no /dev/pts inside gVisor (`tty` says "not a
      // tty"); util-linux `script` allocates a real gVisor pty and relays, resizes included.
      args: withProcessLimit(
        record.spec.resources.pids,
        tty ? ['script', '-qfec', argv.map(shellQuote).join(' '), '/dev/null'] : argv,
      ),
      env: args.env,
      cwd: args.cwd ?? (args.uid === 0 ? '/root' : SANDBOX_USER_HOME),
      uid: args.uid,
      gid: args.gid,
      terminal: tty,
    });
    const target: ExecTarget = {
      execArgv: (extra) => this.access.argv(record, ['exec', ...extra, this.access.cid(id)]),
      scratchDir: join(this.access.paths(id).dir, 'exec'),
      killGroup: (pid, signal) => this.killGroup(record, pid, signal),
      onExit: (pid) => void this.procs.remove(this.access.paths(id).processes, pid).catch(() => undefined),
    };
    return { record, target, processJson, timeoutMs: args.timeoutMs };
  }

  private async track(record: GvisorRecord, pid: number, request: ExecRequest, tty: boolean) {
    await this.procs.add(this.access.paths(record.spec.id).processes, {
      pid,
      command: request.command === '' && tty ? '/bin/bash' : request.command,
      args: request.command === '' && tty ? ['-l'] : (request.args ?? []),
      startedAt: new Date().toISOString(),
      tty,
    });
  }

  /** Each exec'd process leads its own session and group in gVisor: signal the group from inside. */
  private async killGroup(record: GvisorRecord, pid: number, signal: NodeJS.Signals): Promise<void> {
    const number = constants.signals[signal] ?? 9;
    const ok = await this.runInside(
      record,
      `kill -s ${number} -- -${pid} 2>/dev/null || kill -s ${number} ${pid}`,
    );
    if (!ok)
      await runCommand(
        this.access.argv(record, [
          'kill',
          '--pid',
          String(pid),
          this.access.cid(record.spec.id),
          String(number),
        ]),
      );
  }

  /** Run a constant root shell script inside the sandbox with no stdio; true when it exits 0. */
  runInside(record: GvisorRecord, script: string): Promise<boolean> {
    const dir = join(this.access.paths(record.spec.id).dir, 'exec');
    return runScriptInside(dir, script, (extra) =>
      this.access.argv(record, ['exec', ...extra, this.access.cid(record.spec.id)]),
    );
  }

  private async livePids(record: GvisorRecord): Promise<Set<number>> {
    const result = await runCommand(
      this.access.argv(record, ['ps', '--format', 'json', this.access.cid(record.spec.id)]),
    );
    if (result.exitCode !== 0) return new Set();
    try {
      return new Set(JSON.parse(result.stdout) as number[]);
    } catch {
      return new Set();
    }
  }
}
