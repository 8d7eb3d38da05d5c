import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type {
  ExecProcess,
  ExecRequest,
  PortInfo,
  ProcessInfo,
  PtyProcess,
  PtyRequest,
} from '../interface.js';
import type { CgroupDriver } from './cgroups/index.js';
import { buildExecArgs } from './env.js';
import { type SandboxEntry, signalGroup, startExec, startPty } from './exec.js';
import { listPortsFromHost } from './ports.js';
import { processStartTimeSync } from './proc.js';
import type { ProcessTable } from './processes.js';
import { openRelay } from './relay.js';
import type { SandboxRecord } from './state.js';

/** What the process and port wiring needs from the driver's lifecycle side. */
export interface SandboxIoDeps {
  helper(): string;
  cgroups(): CgroupDriver;
  procTable: ProcessTable;
  /** The record of an existing sandbox (after start-up), or SANDBOX_NOT_FOUND. */
  requireRecord(id: string): Promise<SandboxRecord>;
  /** Re-check a running sandbox's init; a dead one is reconciled to 'stopped'. */
  checkAlive(record: SandboxRecord): Promise<void>;
  /** The sandbox's state directory. */
  dirOf(record: SandboxRecord): string;
}

/**
 * The local driver's process, PTY and port wiring: everything that enters a running sandbox
 * through the helper (exec, pty, relay) or reads it from the host (ports), and the process table.
 */
export class SandboxIo {
  constructor(private readonly deps: SandboxIoDeps) {}

  async exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    const { record, entry } = await this.runningEntry(id);
    const args = buildExecArgs(record.spec, request, false);
    const { process, started } = await startExec(entry, args);
    this.deps.procTable.add(id, started, { command: request.command, args: request.args ?? [], tty: false });
    return process;
  }

  async pty(id: string, request: PtyRequest): Promise<PtyProcess> {
    const { record, entry } = await this.runningEntry(id);
    const args = buildExecArgs(record.spec, request, true);
    const statusFile = join(
      this.deps.dirOf(record),
      `pty-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    );
    const { process, started } = await startPty(entry, {
      ...args,
      cols: request.cols,
      rows: request.rows,
      statusFile,
    });
    this.deps.procTable.add(id, started, { command: args.command, args: args.args, tty: true });
    return process;
  }

  async processes(id: string): Promise<ProcessInfo[]> {
    await this.deps.requireRecord(id);
    return this.deps.procTable.list(id);
  }

  async signal(id: string, pid: number, signal: NodeJS.Signals): Promise<void> {
    await this.deps.requireRecord(id);
    const tracked = await this.deps.procTable.find(id, pid);
    if (!tracked)
      throw new RuntimeError('PROCESS_NOT_FOUND', `no process ${pid} started through the API in ${id}`);
    signalGroup(tracked.hostPid, signal);
  }

  async ports(id: string): Promise<PortInfo[]> {
    const { entry } = await this.runningEntry(id);
    return listPortsFromHost(entry.initPid, await this.deps.cgroups().forSandbox(id).pids());
  }

  async connect(id: string, port: number): Promise<Duplex> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RuntimeError('INVALID_ARGUMENT', `bad port ${port}`);
    }
    const { entry } = await this.runningEntry(id);
    return openRelay(entry, port);
  }

  private async runningEntry(id: string): Promise<{ record: SandboxRecord; entry: SandboxEntry }> {
    const record = await this.deps.requireRecord(id);
    if (
      record.state === 'running' &&
      record.init &&
      processStartTimeSync(record.init.pid) !== record.init.startTime
    ) {
      await this.deps.checkAlive(record);
    }
    if (record.state !== 'running' || !record.init) {
      throw new RuntimeError('INVALID_STATE', `sandbox ${id} is ${record.state}, not running`, {
        state: record.state,
      });
    }
    const entry = {
      helper: this.deps.helper(),
      initPid: record.init.pid,
      initStartTime: record.init.startTime,
      procsFiles: this.deps.cgroups().forSandbox(id).procsFiles,
    };
    return { record, entry };
  }
}
