import type { CgroupDriver } from './cgroups/index.js';
import type { DiskStore } from './disks.js';
import type { NetworkManager } from './network/index.js';
import type { ProcessTable } from './processes.js';
import { removeSandboxDir, unmountLayers } from './rootfs.js';
import { type SandboxRecord, sandboxPaths } from './state.js';

/** What tearing a sandbox down needs from the local driver (helper and cgroups exist once ready). */
export interface TeardownDeps {
  stateDir: string;
  helper: () => string;
  cgroups: () => CgroupDriver;
  network: NetworkManager | undefined;
  procTable: ProcessTable;
  diskPool: DiskStore;
  records: Map<string, SandboxRecord>;
}

/** Kill every process (cgroup-wide), drop the cgroup and unmount; the upper layer stays on disk. */
export async function teardownProcesses(deps: TeardownDeps, record: SandboxRecord): Promise<void> {
  const cgroup = deps.cgroups().forSandbox(record.spec.id);
  await cgroup.killAll().catch(() => undefined);
  // A stopped sandbox costs no kernel cgroup state; start makes it again.
  await cgroup.remove().catch(() => undefined);
  await unmountLayers(deps.helper(), sandboxPaths(deps.stateDir, record.spec.id, record.diskId));
  record.init = null;
  deps.procTable.forget(record.spec.id);
}

/** Remove everything of a sandbox: processes, cgroup, mounts, network, directory, disk and record. */
export async function destroySandbox(deps: TeardownDeps, id: string): Promise<void> {
  const record = deps.records.get(id);
  const paths = sandboxPaths(deps.stateDir, id, record?.diskId ?? null);
  const cgroup = deps.cgroups().forSandbox(id);
  await cgroup.killAll().catch(() => undefined);
  await unmountLayers(deps.helper(), paths, { lazy: true });
  await cgroup.remove();
  await deps.network?.teardown(id);
  // Let a background processes.json write finish before the directory goes.
  deps.procTable.forget(id);
  await deps.procTable.flush();
  await removeSandboxDir(paths);
  if (record?.diskId) await deps.diskPool.remove(record.diskId);
  deps.records.delete(id);
}
