import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
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
import { buildOciConfig } from './bundle.js';
import { connectOverExec } from './connect.js';
import { DROP_HOST_FD_HOLDERS, validateSpec } from './inside.js';
import {
  type GvisorPaths,
  gvisorPaths,
  MOUNT_ROOT,
  mountLayers,
  removeCgroups,
  removeSandboxDir,
  unmountLayers,
  unmountOverlay,
} from './layers.js';
import type { GvisorRuntimeOptions } from './options.js';
import { SandboxProcesses } from './processes.js';
import {
  checkPrerequisites,
  lastLine,
  type RunscConfig,
  runChecked,
  runCommand,
  runDetached,
  runscArgv,
} from './runsc.js';
import { ensureStatxShim } from './shim.js';
import { restoreSnapshotFiles, snapshotSandbox } from './snapshot.js';
import { type GvisorRecord, readJson, writeJsonAtomic } from './state.js';
import { sandboxStats } from './stats.js';

// The sentry and gofer are host processes with their own threads inside the sandbox's cgroup.
const PIDS_HEADROOM = 256;

/** The gvisor driver: every sandbox is a runsc (gVisor) sandbox over a host-mounted overlay. */
export class GvisorRuntime implements Runtime {
  readonly name = 'gvisor';
  readonly features: RuntimeFeatures = { memorySnapshots: true, setuid: false, oomScope: 'sandbox' };
  readonly files: SandboxFiles;
  private readonly root: string;
  private readonly runsc: RunscConfig;
  private readonly pool: DiskPool;
  private readonly inside: SandboxProcesses;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly cgroupParent: string;
  private prereqs: Promise<string> | null = null;
  private readonly idPrefix: string;

  constructor(private readonly options: GvisorRuntimeOptions) {
    this.root = join(options.stateDir, 'gvisor');
    this.runsc = {
      binary: options.runsc ?? 'runsc',
      root: join(this.root, '.runsc-root'),
      platform: options.platform ?? 'ptrace',
    };
    this.pool = new DiskPool(join(this.root, '.disk-pool'));
    this.cgroupParent = options.cgroupParent ?? '/corral-gvisor';
    this.idPrefix = `c${createHash('sha256').update(this.root).digest('hex').slice(0, 8)}`;
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
        await this.boot(record);
      } catch (err) {
        await this.teardown(spec.id).catch(() => undefined);
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
    const names = await readdir(this.root).catch(() => [] as string[]);
    const infos = await Promise.all(names.filter((n) => SANDBOX_ID_PATTERN.test(n)).map((n) => this.get(n)));
    return infos.filter((i): i is SandboxInfo => i !== null);
  }

  async start(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['stopped', 'hibernated', 'error'], async (record) => {
      await this.boot(record);
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
      await runChecked(this.argv(record, ['pause', this.cid(id)]), 'runsc pause');
      return 'paused';
    });
  }

  async resume(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['paused', 'hibernated'], async (record, state) => {
      if (state === 'paused') await runChecked(this.argv(record, ['resume', this.cid(id)]), 'runsc resume');
      else await this.boot(record);
      return 'running';
    });
  }

  /** Checkpoint the sandbox (memory and processes) to `checkpoint/`, then free it. */
  async hibernate(id: string): Promise<SandboxInfo> {
    return this.transition(id, ['running', 'paused'], async (record, state) => {
      if (state === 'paused') await runChecked(this.argv(record, ['resume', this.cid(id)]), 'runsc resume');
      await this.checkpoint(record);
      return 'hibernated';
    });
  }

  async destroy(id: string): Promise<void> {
    if (!SANDBOX_ID_PATTERN.test(id)) return;
    await this.ready();
    await this.locked(id, () => this.teardown(id));
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

  async stats(id: string): Promise<SandboxStats> {
    const record = await this.requireRecord(id);
    const state = await this.liveState(record);
    return sandboxStats({
      upper: this.paths(id),
      live: state === 'running' || state === 'paused',
      events: () => runCommand(this.argv(record, ['events', '--stats', this.cid(id)])).then((r) => r.stdout),
      cgroupPath: `${this.cgroupParent}/${this.cid(id)}`,
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
        if (state === 'paused') await runChecked(this.argv(record, ['resume', this.cid(id)]), 'runsc resume');
        await this.checkpoint(record);
      } else if (live) {
        await runChecked(this.argv(record, ['pause', this.cid(id)]), 'runsc pause');
      }
      try {
        const result = await snapshotSandbox(paths, destPath, withMemory);
        return { path: destPath, ...result, includesMemory: withMemory, template: record.spec.template };
      } finally {
        if (withMemory && live) {
          await this.boot(record);
          if (state === 'paused') await runChecked(this.argv(record, ['pause', this.cid(id)]), 'runsc pause');
        } else if (live && state === 'running') {
          await runChecked(this.argv(record, ['resume', this.cid(id)]), 'runsc resume');
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
        await this.boot(record);
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
    this.prereqs ??= checkPrerequisites(this.runsc).then(async (version) => {
      await mkdir(this.runsc.root, { recursive: true, mode: 0o700 });
      await this.options.network?.init();
      return version;
    });
    this.prereqs.catch(() => {
      this.prereqs = null;
    });
    return this.prereqs;
  }

  /**
   * runsc's container id: the sandbox id behind a hash of this runtime's state dir, because runsc
   * names each sandbox's control socket (abstract, host-wide) and cgroup after it.
   */
  private cid(id: string): string {
    return `${this.idPrefix}-${id}`;
  }

  private paths(id: string): GvisorPaths {
    return gvisorPaths(this.root, id);
  }

  private argv(record: GvisorRecord, args: string[], hideNetSysctl = false): string[] {
    return runscArgv(this.runsc, record.network ? 'sandbox' : 'none', args, { hideNetSysctl });
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

  /** runsc's view wins for a sandbox the driver thinks is up: it may have died meanwhile. */
  private async liveState(record: GvisorRecord): Promise<SandboxState> {
    if (record.state !== 'running' && record.state !== 'paused') return record.state;
    const result = await runCommand(this.argv(record, ['state', this.cid(record.spec.id)]));
    if (result.exitCode !== 0) return 'stopped';
    const status = (JSON.parse(result.stdout) as { status?: string }).status;
    if (status === 'running') return 'running';
    if (status === 'paused') return 'paused';
    return 'stopped';
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

  /** Mount, network, then `runsc run` (or `restore` from a checkpoint); leaves the record running. */
  private async boot(record: GvisorRecord): Promise<void> {
    const { spec } = record;
    const paths = this.paths(spec.id);
    await this.removeContainer(record);
    await mountLayers(paths, record.lowerDir, this.pool, spec.resources.diskMb);
    if (this.options.network) {
      // Re-run on every boot: runsc moves eth0's address into gVisor's netstack, so it must be put back.
      const net = await this.options.network.setup(spec.id, spec.network);
      record.network = { netnsPath: net.netnsPath, resolvConf: net.resolvConfPath };
      await copyFile(net.resolvConfPath, paths.resolvConf);
      await chmod(paths.resolvConf, 0o644);
    }
    const config = buildOciConfig(spec, {
      rootfs: paths.rootfs,
      resolvConf: record.network ? paths.resolvConf : null,
      netnsPath: record.network?.netnsPath ?? null,
      cgroupsPath: `${this.cgroupParent}/${this.cid(spec.id)}`,
      pidsHeadroom: PIDS_HEADROOM,
      shim: await ensureStatxShim(join(MOUNT_ROOT, 'lib')),
    });
    await writeFile(paths.config, JSON.stringify(config, null, 2), { mode: 0o600 });
    await writeJsonAtomic(paths.processes, []);
    const args = record.checkpointed
      ? ['restore', '--image-path', paths.checkpoint, '--bundle', paths.dir, '--detach', this.cid(spec.id)]
      : ['run', '--bundle', paths.dir, '--detach', this.cid(spec.id)];
    const result = await runDetached(this.argv(record, args, true), join(paths.dir, 'runsc.log'));
    if (result.exitCode !== 0) {
      await this.removeContainer(record);
      await removeCgroups(`${this.cgroupParent}/${this.cid(spec.id)}`);
      const line = lastLine(result.stderr);
      if (/ptrace|platform|kvm/i.test(line)) {
        throw new RuntimeError('PREREQUISITE_MISSING', `runsc cannot start a sandbox here: ${line}`, {
          fix: 'a kernel that allows ptrace (or /dev/kvm with platform kvm)',
        });
      }
      throw new RuntimeError('INTERNAL', `runsc ${args[0]} failed: ${line}`, {
        stderr: result.stderr.slice(-2000),
      });
    }
    if (record.checkpointed) {
      record.checkpointed = false;
      await rm(paths.checkpoint, { recursive: true, force: true });
    }
    record.state = 'running';
    await writeJsonAtomic(paths.record, record);
  }

  /** Kill every process and delete runsc's container; the filesystem and network stay. */
  private async halt(record: GvisorRecord): Promise<void> {
    await this.removeContainer(record);
  }

  private async checkpoint(record: GvisorRecord): Promise<void> {
    const paths = this.paths(record.spec.id);
    // A process holding one of runsc exec's host fds (an API exec stream: a host socket) cannot be
    // restored — gVisor panics re-opening the fd — and its stream could not survive anyway.
    await this.inside.runInside(record, DROP_HOST_FD_HOLDERS);
    await rm(paths.checkpoint, { recursive: true, force: true });
    await mkdir(paths.checkpoint, { mode: 0o700 });
    await runChecked(
      this.argv(record, ['checkpoint', '--image-path', paths.checkpoint, this.cid(record.spec.id)]),
      'runsc checkpoint',
    );
    await this.removeContainer(record);
    record.checkpointed = true;
  }

  private async removeContainer(record: GvisorRecord): Promise<void> {
    const id = record.spec.id;
    // `state` can fail transiently under load, so delete regardless, and check it is gone.
    for (let attempt = 0; attempt < 3; attempt++) {
      await runCommand(this.argv(record, ['delete', '--force', this.cid(id)]));
      const state = await runCommand(this.argv(record, ['state', this.cid(id)]));
      if (state.exitCode !== 0) return;
    }
  }

  private async teardown(id: string): Promise<void> {
    const paths = this.paths(id);
    const record = await readJson<GvisorRecord>(paths.record);
    const probe: GvisorRecord = record ?? ({ spec: { id }, network: null } as unknown as GvisorRecord);
    await this.removeContainer(probe);
    await removeCgroups(`${this.cgroupParent}/${this.cid(id)}`);
    await unmountLayers(paths).catch(() => undefined);
    await this.options.network?.teardown(id);
    await removeSandboxDir(paths);
  }
}
