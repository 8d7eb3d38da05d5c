import { mkdir } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type {
  ExecProcess,
  ExecRequest,
  NetworkPolicy,
  PortInfo,
  ProcessInfo,
  PtyProcess,
  PtyRequest,
  Resources,
  Runtime,
  RuntimeFeatures,
  SandboxFiles,
  SandboxInfo,
  SandboxSpec,
  SandboxState,
  SandboxStats,
  SnapshotInfo,
  SnapshotOptions,
} from '../interface.js';
import { createExecFiles } from '../shared/files-over-exec.js';
import type { TemplateStore } from '../templates/interface.js';
import { startSandboxInit } from './boot.js';
import { type CgroupDriver, detectCgroupDriver } from './cgroups/index.js';
import { DiskStore } from './disks.js';
import { makeSandboxRecord } from './driver-create.js';
import { reconcileRecord, recoverSandboxes } from './driver-recovery.js';
import { setRecordResources } from './driver-resources.js';
import { restoreUpper, type SnapshotDeps, snapshotUpper } from './driver-snapshots.js';
import { destroySandbox, type TeardownDeps, teardownProcesses } from './driver-teardown.js';
import { KeyedLock } from './locks.js';
import { ensureHelper } from './native.js';
import type { NetworkManager } from './network/index.js';
import { checkPrerequisites } from './prereqs.js';
import { processStartTimeSync } from './proc.js';
import { ProcessTable } from './processes.js';
import { prepareLayers, upperBytes, writeIdentity } from './rootfs.js';
import { SandboxIo } from './sandbox-io.js';
import { validateArchive } from './snapshot.js';
import { hostnameOf, toInfo, validateSpec } from './spec.js';
import { disksDir, type SandboxRecord, sandboxPaths, writeJsonAtomic } from './state.js';

export interface LocalRuntimeOptions {
  /** Root of the driver's on-disk state: `sandboxes/<id>/`, `bin/`. */
  stateDir: string;
  templates: TemplateStore;
  /** Per-sandbox netns and egress policy. Without one, each sandbox gets a loopback-only netns. */
  network?: NetworkManager;
  /** Disk sizes (MiB) to keep formatted and mounted ahead of demand, e.g. the plans' sizes. */
  prewarmDiskMb?: number[];
  /** Override cgroup detection (tests). */
  cgroups?: CgroupDriver;
}

/**
 * The `local` driver: Linux namespaces + overlayfs + cgroups, entered through a small C helper.
 * No per-sandbox daemon runs in Node; all state lives under `stateDir` so a new instance finds
 * every sandbox again.
 */
export function createLocalRuntime(options: LocalRuntimeOptions): Runtime {
  return new LocalRuntime(options);
}

class LocalRuntime implements Runtime {
  readonly name = 'local';
  readonly features: RuntimeFeatures = { memorySnapshots: false, setuid: true, oomScope: 'process' };
  readonly files: SandboxFiles;
  private readonly records = new Map<string, SandboxRecord>();
  private readonly locks = new KeyedLock();
  private readonly procTable: ProcessTable;
  private helper = '';
  private readonly diskPool: DiskStore;
  private cgroups!: CgroupDriver;
  private readonly ready: Promise<void>;
  private readonly io: SandboxIo;
  private readonly teardown: TeardownDeps;

  constructor(private readonly options: LocalRuntimeOptions) {
    this.files = createExecFiles((id, request) => this.exec(id, request));
    this.procTable = new ProcessTable((id) => sandboxPaths(options.stateDir, id, null).processes);
    this.diskPool = new DiskStore(disksDir(options.stateDir), () => this.helper);
    this.io = new SandboxIo({
      helper: () => this.helper,
      cgroups: () => this.cgroups,
      procTable: this.procTable,
      requireRecord: (id) => this.requireRecord(id),
      checkAlive: (record) => this.checkAlive(record),
      dirOf: (record) => this.paths(record).dir,
    });
    this.teardown = {
      stateDir: options.stateDir,
      helper: () => this.helper,
      cgroups: () => this.cgroups,
      network: options.network,
      procTable: this.procTable,
      diskPool: this.diskPool,
      records: this.records,
    };
    this.ready = this.initialize();
    this.ready.catch(() => undefined);
  }

  private async initialize(): Promise<void> {
    await checkPrerequisites();
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    this.cgroups = this.options.cgroups ?? detectCgroupDriver();
    this.helper = await ensureHelper(this.options.stateDir);
    await this.options.network?.init();
    await recoverSandboxes({
      stateDir: this.options.stateDir,
      helper: this.helper,
      cgroups: this.cgroups,
      records: this.records,
      procTable: this.procTable,
      diskPool: this.diskPool,
      prewarmDiskMb: this.options.prewarmDiskMb,
      reconcile: (record) => this.reconcile(record),
    });
  }

  /** A running/paused sandbox whose init died (crash, host reboot) becomes 'stopped', cleaned up. */
  private reconcile(record: SandboxRecord): Promise<void> {
    return reconcileRecord(
      {
        cgroups: this.cgroups,
        teardownProcesses: (r) => this.teardownProcesses(r),
        save: (r) => this.save(r),
      },
      record,
    );
  }

  // ---- lifecycle ----

  async create(spec: SandboxSpec): Promise<SandboxInfo> {
    validateSpec(spec);
    await this.ready;
    return this.locked(spec.id, async () => {
      const paths = sandboxPaths(this.options.stateDir, spec.id, null);
      if (this.records.has(spec.id))
        throw new RuntimeError('SANDBOX_EXISTS', `sandbox ${spec.id} already exists`);
      const record = await makeSandboxRecord(this.options.stateDir, this.options.templates, spec, paths);
      this.records.set(spec.id, record);
      try {
        await this.save(record);
        await this.boot(record, async () => {
          if (spec.resources.diskMb > 0) record.diskId = await this.diskPool.take(spec.resources.diskMb);
          await this.prepareFs(record);
          await writeIdentity(this.paths(record), hostnameOf(spec));
        });
      } catch (err) {
        await this.destroyUnlocked(spec.id).catch(() => undefined);
        throw err;
      }
      return toInfo(record);
    });
  }

  async get(id: string): Promise<SandboxInfo | null> {
    await this.ready;
    const record = this.records.get(id);
    if (!record) return null;
    await this.checkAlive(record);
    return toInfo(record);
  }

  async list(): Promise<SandboxInfo[]> {
    await this.ready;
    const out: SandboxInfo[] = [];
    for (const record of this.records.values()) {
      await this.checkAlive(record);
      out.push(toInfo(record));
    }
    return out;
  }

  /** Start a stopped or hibernated sandbox; one in 'error' is cleaned up and started afresh. */
  async start(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['stopped', 'hibernated', 'error'], async (record) => {
      if (record.state === 'error') await this.teardownProcesses(record);
      await this.boot(record, () => this.prepareFs(record));
    });
  }

  async stop(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running', 'paused'], (record) => this.halt(record, 'stopped'));
  }

  async hibernate(id: string): Promise<SandboxInfo> {
    // Local isolation cannot keep memory: hibernate persists the filesystem and frees the processes.
    return this.transition(id, ['running', 'paused'], (record) => this.halt(record, 'hibernated'));
  }

  async pause(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running'], async (record) => {
      await this.cgroups.forSandbox(id).freeze();
      record.state = 'paused';
      await this.save(record);
    });
  }

  async resume(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['paused', 'hibernated'], async (record) => {
      if (record.state === 'hibernated') {
        await this.boot(record, () => this.prepareFs(record));
        return;
      }
      await this.cgroups.forSandbox(id).thaw();
      record.state = 'running';
      await this.save(record);
    });
  }

  async destroy(id: string): Promise<void> {
    await this.ready;
    await this.locked(id, () => this.destroyUnlocked(id));
  }

  private destroyUnlocked(id: string): Promise<void> {
    return destroySandbox(this.teardown, id);
  }

  /** Make the sandbox's layers ready: mount its disk image, or make upper/work in its dir. */
  private prepareFs(record: SandboxRecord): Promise<void> {
    return prepareLayers(this.diskPool, this.paths(record), record.diskId);
  }

  /** Start the init (filesystem, cgroup and network made concurrently, see boot.ts) and save. */
  private async boot(record: SandboxRecord, prepareFs: () => Promise<void>): Promise<void> {
    const deps = {
      helper: this.helper,
      cgroups: this.cgroups,
      network: this.options.network,
      paths: () => this.paths(record),
    };
    await startSandboxInit(deps, record, prepareFs);
    record.state = 'running';
    delete record.error;
    await this.save(record);
  }

  private async halt(record: SandboxRecord, state: 'stopped' | 'hibernated'): Promise<void> {
    await this.teardownProcesses(record);
    record.state = state;
    await this.save(record);
  }

  private teardownProcesses(record: SandboxRecord): Promise<void> {
    return teardownProcesses(this.teardown, record);
  }

  private async checkAlive(record: SandboxRecord): Promise<void> {
    if (record.state !== 'running' && record.state !== 'paused') return;
    const init = record.init;
    if (init && processStartTimeSync(init.pid) === init.startTime) return;
    await this.locked(record.spec.id, () => this.reconcile(record));
  }

  // ---- processes, ptys and ports (sandbox-io.ts) ----

  exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    return this.io.exec(id, request);
  }

  pty(id: string, request: PtyRequest): Promise<PtyProcess> {
    return this.io.pty(id, request);
  }

  processes(id: string): Promise<ProcessInfo[]> {
    return this.io.processes(id);
  }

  signal(id: string, pid: number, signal: NodeJS.Signals): Promise<void> {
    return this.io.signal(id, pid, signal);
  }

  ports(id: string): Promise<PortInfo[]> {
    return this.io.ports(id);
  }

  connect(id: string, port: number): Promise<Duplex> {
    return this.io.connect(id, port);
  }

  async setNetwork(id: string, policy: NetworkPolicy): Promise<void> {
    await this.locked(id, async () => {
      const record = await this.requireRecord(id);
      if (this.options.network && record.network) await this.options.network.update(id, policy);
      record.spec.network = structuredClone(policy);
      await this.save(record);
    });
  }

  /** New cpu/memory/pids, into the cgroup when live and into the record (driver-resources.ts). */
  async setResources(id: string, resources: Resources): Promise<SandboxInfo> {
    return this.transition(id, ['running', 'paused', 'stopped', 'hibernated', 'error'], (record) =>
      setRecordResources({ cgroups: this.cgroups, save: (r) => this.save(r) }, record, resources),
    );
  }

  async stats(id: string): Promise<SandboxStats> {
    const record = await this.requireRecord(id);
    const running = record.state === 'running' || record.state === 'paused';
    const usage = running
      ? await this.cgroups.forSandbox(id).usage()
      : { cpuSeconds: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: 0 };
    const net = this.options.network && record.network ? await this.options.network.counters(id) : null;
    return {
      ...usage,
      diskBytes: await upperBytes(this.paths(record)),
      networkRxBytes: net?.rxBytes ?? 0,
      networkTxBytes: net?.txBytes ?? 0,
    };
  }

  // ---- snapshots ----

  async snapshot(id: string, destPath: string, options: SnapshotOptions = {}): Promise<SnapshotInfo> {
    if (options.includeMemory) {
      throw new RuntimeError(
        'UNSUPPORTED',
        'the local runtime cannot snapshot process memory (use gvisor isolation)',
      );
    }
    await this.ready;
    return this.locked(id, () => snapshotUpper(this.snapshotDeps(), id, destPath));
  }

  async restore(id: string, srcPath: string): Promise<SandboxInfo> {
    await this.ready;
    await validateArchive(srcPath);
    return this.locked(id, () => restoreUpper(this.snapshotDeps(), id, srcPath));
  }

  /** Flush state and close the network manager handed to this runtime (its DNS forwarder sockets). */
  async close(): Promise<void> {
    await this.ready.catch(() => undefined);
    await this.procTable.flush();
    await this.diskPool.release();
    await this.options.network?.close();
  }

  // ---- helpers ----

  private snapshotDeps(): SnapshotDeps {
    return {
      cgroups: this.cgroups,
      requireRecord: (id) => this.requireRecord(id),
      paths: (record) => this.paths(record),
      prepareFs: (record) => this.prepareFs(record),
      halt: (record, state) => this.halt(record, state),
      boot: (record, prepareFs) => this.boot(record, prepareFs),
    };
  }

  private paths(record: SandboxRecord) {
    return sandboxPaths(this.options.stateDir, record.spec.id, record.diskId);
  }

  private async save(record: SandboxRecord): Promise<void> {
    await writeJsonAtomic(this.paths(record).state, record);
  }

  private async requireRecord(id: string): Promise<SandboxRecord> {
    await this.ready;
    const record = this.records.get(id);
    if (!record) throw new RuntimeError('SANDBOX_NOT_FOUND', `no sandbox ${id}`);
    return record;
  }

  private async transition(
    id: string,
    from: SandboxState[],
    apply: (record: SandboxRecord) => Promise<void>,
  ): Promise<SandboxInfo> {
    await this.ready;
    return this.locked(id, async () => {
      const record = await this.requireRecord(id);
      await this.reconcile(record);
      if (!from.includes(record.state)) {
        throw new RuntimeError(
          'INVALID_STATE',
          `sandbox ${id} is ${record.state}; expected ${from.join(' or ')}`,
          {
            state: record.state,
          },
        );
      }
      try {
        await apply(record);
      } catch (err) {
        if (err instanceof RuntimeError) throw err;
        record.state = 'error';
        record.error = (err as Error).message;
        await this.save(record).catch(() => undefined);
        throw new RuntimeError('INTERNAL', (err as Error).message, {}, { cause: err });
      }
      return toInfo(record);
    });
  }

  /** Serialize lifecycle work per sandbox. */
  private locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(id, work);
  }
}
