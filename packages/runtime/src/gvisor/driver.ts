import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
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
import { DiskPool } from '../local/disk-pool.js';
import { createExecFiles } from '../shared/files-over-exec.js';
import { SANDBOX_ID_PATTERN } from '../shared/ids.js';
import { listPortsOverExec } from '../shared/ports-over-exec.js';
import { connectOverExec } from './connect.js';
import { RunscContainers } from './containers.js';
import { DROP_HOST_FD_HOLDERS, validateSpec } from './inside.js';
import { type GvisorPaths, mountLayers, unmountOverlay } from './layers.js';
import type { GvisorRuntimeOptions } from './options.js';
import { SandboxProcesses } from './processes.js';
import { setGvisorResources } from './resources.js';
import { checkPrerequisites, runCommand } from './runsc.js';
import { restoreSnapshotFiles, snapshotSandbox } from './snapshot.js';
import { type GvisorRecord, readJson, writeJsonAtomic } from './state.js';
import { sandboxStats } from './stats.js';

/** The gvisor driver: every sandbox is a runsc (gVisor) sandbox over a host-mounted overlay. */
export class GvisorRuntime implements Runtime {
  readonly name = 'gvisor';
  readonly features: RuntimeFeatures = { memorySnapshots: true, setuid: false, oomScope: 'sandbox' };
  readonly files: SandboxFiles;
  private readonly containers: RunscContainers;
  private readonly pool: DiskPool;
  private readonly inside: SandboxProcesses;
  private readonly locks = new Map<string, Promise<unknown>>();
  private prereqs: Promise<string> | null = null;

  constructor(private readonly options: GvisorRuntimeOptions) {
    this.pool = new DiskPool(join(options.stateDir, 'gvisor', '.disk-pool'));
    this.containers = new RunscContainers(options, this.pool);
    const exec = (id: string, request: ExecRequest) => this.exec(id, request);
    this.files = createExecFiles(exec);
    this.inside = new SandboxProcesses({
      requireRecord: (id) => this.requireRecord(id),
      liveState: (record) => this.liveState(record),
      argv: (record, args) => this.argv(record, args),
      cid: (id) => this.cid(id),
      paths: (id) => this.paths(id),
    });
  }

  // ---- lifecycle ----

  async create(spec: SandboxSpec): Promise<SandboxInfo> {
    validateSpec(spec);
    await this.ready();
    return this.locked(spec.id, async () => {
      const paths = this.paths(spec.id);
      if (await readJson<GvisorRecord>(paths.record)) {
        throw new RuntimeError('SANDBOX_EXISTS', `sandbox ${spec.id} exists`, { id: spec.id });
      }
      const template = await this.options.templates.resolve(spec.template);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      const record: GvisorRecord = {
        version: 1,
        spec,
        state: 'stopped',
        createdAt: new Date().toISOString(),
        templateId: template.id,
        lowerDir: template.rootfs,
        network: null,
        checkpointed: false,
      };
      try {
        await writeJsonAtomic(paths.record, record);
        await this.containers.boot(record);
      } catch (err) {
        await this.containers.teardown(spec.id).catch(() => undefined);
        throw err;
      }
      return this.info(record, 'running');
    });
  }

  async get(id: string): Promise<SandboxInfo | null> {
    if (!SANDBOX_ID_PATTERN.test(id)) return null;
    const record = await readJson<GvisorRecord>(this.paths(id).record);
    return record ? this.info(record, await this.liveState(record)) : null;
  }

  async list(): Promise<SandboxInfo[]> {
    const names = await readdir(this.containers.root).catch(() => [] as string[]);
    const infos = await Promise.all(names.filter((n) => SANDBOX_ID_PATTERN.test(n)).map((n) => this.get(n)));
    return infos.filter((i): i is SandboxInfo => i !== null);
  }

  async start(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['stopped', 'hibernated', 'error'], async (record) => {
      await this.containers.boot(record);
      return 'running';
    });
  }

  async stop(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running', 'paused'], async (record) => {
      await this.halt(record);
      return 'stopped';
    });
  }

  async pause(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running'], async (record) => {
      await this.containers.toggle(record, 'pause');
      return 'paused';
    });
  }

  async resume(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['paused', 'hibernated'], async (record, state) => {
      if (state === 'paused') await this.containers.toggle(record, 'resume');
      else await this.containers.boot(record);
      return 'running';
    });
  }

  /** Checkpoint the sandbox (memory and processes) to `checkpoint/`, then free it. */
  async hibernate(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running', 'paused'], async (record, state) => {
      if (state === 'paused') await this.containers.toggle(record, 'resume');
      await this.checkpoint(record);
      return 'hibernated';
    });
  }

  async destroy(id: string): Promise<void> {
    if (!SANDBOX_ID_PATTERN.test(id)) return;
    await this.ready();
    await this.locked(id, () => this.containers.teardown(id));
  }

  // ---- processes ----

  exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    return this.inside.exec(id, request);
  }

  pty(id: string, request: PtyRequest): Promise<PtyProcess> {
    return this.inside.pty(id, request);
  }

  processes(id: string): Promise<ProcessInfo[]> {
    return this.inside.list(id);
  }

  signal(id: string, pid: number, signal: NodeJS.Signals): Promise<void> {
    return this.inside.signal(id, pid, signal);
  }

  // ---- network ----

  async ports(id: string): Promise<PortInfo[]> {
    return listPortsOverExec((sid, request) => this.exec(sid, request), id);
  }

  async connect(id: string, port: number): Promise<Duplex> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new RuntimeError('INVALID_ARGUMENT', `bad port ${port}`);
    }
    return connectOverExec((request) => this.exec(id, request), port);
  }

  async setNetwork(id: string, policy: NetworkPolicy): Promise<void> {
    await this.locked(id, async () => {
      const record = await this.requireRecord(id);
      if (this.options.network && record.network) await this.options.network.update(id, policy);
      else if (policy.mode !== 'none') {
        throw new RuntimeError(
          'UNSUPPORTED',
          'this runtime has no network manager: sandboxes are loopback-only',
        );
      }
      record.spec = { ...record.spec, network: policy };
      await writeJsonAtomic(this.paths(id).record, record);
    });
  }

  /** Live into the host cgroup when running or paused, and into the record (resources.ts). */
  async setResources(id: string, resources: Resources): Promise<SandboxInfo> {
    await this.ready();
    return this.locked(id, async () => {
      const record = await this.requireRecord(id);
      const state = await this.liveState(record);
      await setGvisorResources(this.paths(id), this.containers.cgroupPath(id), record, state, resources);
      return this.info(record, state);
    });
  }

  async stats(id: string): Promise<SandboxStats> {
    const record = await this.requireRecord(id);
    const state = await this.liveState(record);
    return sandboxStats({
      upper: this.paths(id),
      live: state === 'running' || state === 'paused',
      events: () => runCommand(this.argv(record, ['events', '--stats', this.cid(id)])).then((r) => r.stdout),
      cgroupPath: this.containers.cgroupPath(id),
      network: this.options.network && record.network ? this.options.network : null,
      id,
    });
  }

  // ---- snapshots ----

  async snapshot(id: string, destPath: string, options: SnapshotOptions = {}): Promise<SnapshotInfo> {
    await this.ready();
    return this.locked(id, async () => {
      const record = await this.requireRecord(id);
      const state = await this.liveState(record);
      const paths = this.paths(id);
      await mountLayers(paths, record.lowerDir, this.pool, record.spec.resources.diskMb);
      const withMemory =
        options.includeMemory === true && (state === 'running' || state === 'paused' || record.checkpointed);
      if (options.includeMemory && !withMemory) {
        throw new RuntimeError('INVALID_STATE', 'a stopped sandbox has no memory to snapshot', { id, state });
      }
      // Memory: checkpoint (which stops the sandbox), archive, then bring it back as it was.
      const live = state === 'running' || state === 'paused';
      if (withMemory && live) {
        if (state === 'paused') await this.containers.toggle(record, 'resume');
        await this.checkpoint(record);
      } else if (live) {
        await this.containers.toggle(record, 'pause');
      }
      try {
        const result = await snapshotSandbox(paths, destPath, withMemory);
        return { path: destPath, ...result, includesMemory: withMemory, template: record.spec.template };
      } finally {
        if (withMemory && live) {
          await this.containers.boot(record);
          if (state === 'paused') await this.containers.toggle(record, 'pause');
        } else if (live && state === 'running') {
          await this.containers.toggle(record, 'resume');
        }
      }
    });
  }

  async restore(id: string, srcPath: string): Promise<SandboxInfo> {
    await this.ready();
    return this.locked(id, async () => {
      const record = await this.requireRecord(id);
      const paths = this.paths(id);
      const staged = await restoreSnapshotFiles.stage(srcPath, paths);
      try {
        const state = await this.liveState(record);
        if (state === 'running' || state === 'paused') await this.halt(record);
        await mountLayers(paths, record.lowerDir, this.pool, record.spec.resources.diskMb);
        await unmountOverlay(paths);
        await restoreSnapshotFiles.apply(staged, paths);
        record.checkpointed = staged.hasMemory;
        await this.containers.boot(record);
      } finally {
        await staged.cleanup();
      }
      return this.info(record, 'running');
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
    await this.pool.settle();
    await this.options.network?.close();
  }

  // ---- internals ----

  private ready(): Promise<string> {
    this.prereqs ??= checkPrerequisites(this.containers.runsc).then(async (version) => {
      await mkdir(this.containers.runsc.root, { recursive: true, mode: 0o700 });
      await this.options.network?.init();
      return version;
    });
    this.prereqs.catch(() => {
      this.prereqs = null;
    });
    return this.prereqs;
  }

  private cid(id: string): string {
    return this.containers.cid(id);
  }

  private paths(id: string): GvisorPaths {
    return this.containers.paths(id);
  }

  private argv(record: GvisorRecord, args: string[]): string[] {
    return this.containers.argv(record, args);
  }

  private liveState(record: GvisorRecord): Promise<SandboxState> {
    return this.containers.liveState(record);
  }

  private async locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(id, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(id) === next) this.locks.delete(id);
    }
  }

  private async requireRecord(id: string): Promise<GvisorRecord> {
    const record = SANDBOX_ID_PATTERN.test(id) ? await readJson<GvisorRecord>(this.paths(id).record) : null;
    if (!record) throw new RuntimeError('SANDBOX_NOT_FOUND', `sandbox ${id} not found`, { id });
    return record;
  }

  private info(record: GvisorRecord, state: SandboxState): SandboxInfo {
    const { spec } = record;
    return {
      id: spec.id,
      state,
      isolation: 'gvisor',
      template: spec.template,
      resources: spec.resources,
      network: spec.network,
      metadata: spec.metadata,
      createdAt: record.createdAt,
      ...(record.error ? { error: record.error } : {}),
    };
  }

  private async transition(
    id: string,
    from: SandboxState[],
    work: (record: GvisorRecord, state: SandboxState) => Promise<SandboxState>,
  ): Promise<SandboxInfo> {
    await this.ready();
    return this.locked(id, async () => {
      const record = await this.requireRecord(id);
      const state = await this.liveState(record);
      if (!from.includes(state)) {
        throw new RuntimeError('INVALID_STATE', `sandbox ${id} is ${state}`, { id, state });
      }
      record.state = await work(record, state);
      delete record.error;
      await writeJsonAtomic(this.paths(id).record, record);
      return this.info(record, record.state);
    });
  }

  /** Kill every process and delete runsc's container; the filesystem and network stay. */
  private halt(record: GvisorRecord): Promise<void> {
    return this.containers.remove(record);
  }

  private checkpoint(record: GvisorRecord): Promise<void> {
    // A process holding one of runsc exec's host fds (an API exec stream: a host socket) cannot be
    // restored — gVisor panics re-opening the fd — and its stream could not survive anyway.
    return this.containers.checkpoint(record, () => this.inside.runInside(record, DROP_HOST_FD_HOLDERS));
  }
}
