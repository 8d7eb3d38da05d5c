import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { SandboxState } from '../interface.js';
import type { DiskPool } from '../local/disk-pool.js';
import { buildOciConfig } from './bundle.js';
import {
  type GvisorPaths,
  gvisorPaths,
  MOUNT_ROOT,
  mountLayers,
  removeCgroups,
  removeSandboxDir,
  unmountLayers,
} from './layers.js';
import type { GvisorRuntimeOptions } from './options.js';
import { lastLine, type RunscConfig, runChecked, runCommand, runDetached, runscArgv } from './runsc.js';
import { ensureStatxShim } from './shim.js';
import { type GvisorRecord, readJson, writeJsonAtomic } from './state.js';

// The sentry and gofer are host processes with their own threads inside the sandbox's cgroup.
const PIDS_HEADROOM = 256;

/**
 * One runtime's runsc containers: naming, state probes, boot (run or restore), checkpoint and
 * teardown. The driver holds the per-sandbox locks and the record's state machine around these.
 */
export class RunscContainers {
  readonly root: string;
  readonly runsc: RunscConfig;
  readonly cgroupParent: string;
  private readonly idPrefix: string;
  private readonly network: GvisorRuntimeOptions['network'];

  constructor(
    options: GvisorRuntimeOptions,
    private readonly pool: DiskPool,
  ) {
    this.root = join(options.stateDir, 'gvisor');
    this.runsc = {
      binary: options.runsc ?? 'runsc',
      root: join(this.root, '.runsc-root'),
      platform: options.platform ?? 'ptrace',
    };
    this.cgroupParent = options.cgroupParent ?? '/corral-gvisor';
    this.idPrefix = `c${createHash('sha256').update(this.root).digest('hex').slice(0, 8)}`;
    this.network = options.network;
  }

  /**
   * runsc's container id: the sandbox id behind a hash of this runtime's state dir, because runsc
   * names each sandbox's control socket (abstract, host-wide) and cgroup after it.
   */
  cid(id: string): string {
    return `${this.idPrefix}-${id}`;
  }

  /** The host cgroup of one sandbox. */
  cgroupPath(id: string): string {
    return `${this.cgroupParent}/${this.cid(id)}`;
  }

  paths(id: string): GvisorPaths {
    return gvisorPaths(this.root, id);
  }

  argv(record: GvisorRecord, args: string[], hideNetSysctl = false): string[] {
    return runscArgv(this.runsc, record.network ? 'sandbox' : 'none', args, { hideNetSysctl });
  }

  /** `runsc pause` or `runsc resume` of the sandbox's container. */
  async toggle(record: GvisorRecord, verb: 'pause' | 'resume'): Promise<void> {
    await runChecked(this.argv(record, [verb, this.cid(record.spec.id)]), `runsc ${verb}`);
  }

  /** runsc's view wins for a sandbox the driver thinks is up: it may have died meanwhile. */
  async liveState(record: GvisorRecord): Promise<SandboxState> {
    if (record.state !== 'running' && record.state !== 'paused') return record.state;
    const result = await runCommand(this.argv(record, ['state', this.cid(record.spec.id)]));
    if (result.exitCode !== 0) return 'stopped';
    const status = (JSON.parse(result.stdout) as { status?: string }).status;
    if (status === 'running') return 'running';
    if (status === 'paused') return 'paused';
    return 'stopped';
  }

  /** Mount, network, then `runsc run` (or `restore` from a checkpoint); leaves the record running. */
  async boot(record: GvisorRecord): Promise<void> {
    const { spec } = record;
    const paths = this.paths(spec.id);
    await this.remove(record);
    await mountLayers(paths, record.lowerDir, this.pool, spec.resources.diskMb);
    if (this.network) {
      // Re-run on every boot: runsc moves eth0's address into gVisor's netstack, so it must be put back.
      const net = await this.network.setup(spec.id, spec.network);
      record.network = { netnsPath: net.netnsPath, resolvConf: net.resolvConfPath };
      await copyFile(net.resolvConfPath, paths.resolvConf);
      await chmod(paths.resolvConf, 0o644);
    }
    const config = buildOciConfig(spec, {
      rootfs: paths.rootfs,
      resolvConf: record.network ? paths.resolvConf : null,
      netnsPath: record.network?.netnsPath ?? null,
      cgroupsPath: this.cgroupPath(spec.id),
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
      await this.remove(record);
      await removeCgroups(this.cgroupPath(spec.id));
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

  /**
   * Checkpoint memory and processes to `checkpoint/`, then delete the container. `prepare` runs
   * first, inside the sandbox (the driver drops processes that cannot be restored).
   */
  async checkpoint(record: GvisorRecord, prepare: () => Promise<unknown>): Promise<void> {
    const paths = this.paths(record.spec.id);
    await prepare();
    await rm(paths.checkpoint, { recursive: true, force: true });
    await mkdir(paths.checkpoint, { mode: 0o700 });
    await runChecked(
      this.argv(record, ['checkpoint', '--image-path', paths.checkpoint, this.cid(record.spec.id)]),
      'runsc checkpoint',
    );
    await this.remove(record);
    record.checkpointed = true;
  }

  /** Kill every process and delete runsc's container; the filesystem and network stay. */
  async remove(record: GvisorRecord): Promise<void> {
    const id = record.spec.id;
    // `state` can fail transiently under load, so delete regardless, and check it is gone.
    for (let attempt = 0; attempt < 3; attempt++) {
      await runCommand(this.argv(record, ['delete', '--force', this.cid(id)]));
      const state = await runCommand(this.argv(record, ['state', this.cid(id)]));
      if (state.exitCode !== 0) return;
    }
  }

  /** Delete the container, its cgroups, mounts, network and directory, whatever state they are in. */
  async teardown(id: string): Promise<void> {
    const paths = this.paths(id);
    const record = await readJson<GvisorRecord>(paths.record);
    const probe: GvisorRecord = record ?? ({ spec: { id }, network: null } as unknown as GvisorRecord);
    await this.remove(probe);
    await removeCgroups(this.cgroupPath(id));
    await unmountLayers(paths).catch(() => undefined);
    await this.network?.teardown(id);
    await removeSandboxDir(paths);
  }
}
