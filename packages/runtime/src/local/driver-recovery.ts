import type { CgroupDriver } from './cgroups/index.js';
import type { DiskStore } from './disks.js';
import { isSameProcess } from './proc.js';
import type { ProcessTable } from './processes.js';
import { removeSandboxDir, unmountLayers } from './rootfs.js';
import { listRecordIds, readRecord, type SandboxRecord, sandboxPaths } from './state.js';

/** What start-up recovery needs from the local driver. */
export interface RecoveryDeps {
  stateDir: string;
  helper: string;
  cgroups: CgroupDriver;
  records: Map<string, SandboxRecord>;
  procTable: ProcessTable;
  diskPool: DiskStore;
  prewarmDiskMb: number[] | undefined;
  reconcile: (record: SandboxRecord) => Promise<void>;
}

/**
 * Find every sandbox under `stateDir` again: load its record and process table, reconcile it,
 * clean up creates that died before their first state write, then sweep and prewarm disks.
 */
export async function recoverSandboxes(deps: RecoveryDeps): Promise<void> {
  for (const id of await listRecordIds(deps.stateDir)) {
    const paths = sandboxPaths(deps.stateDir, id, null);
    const record = await readRecord(paths.state);
    if (!record) {
      // A create that died before its first state write: nothing of it is reachable.
      await deps.cgroups
        .forSandbox(id)
        .killAll()
        .catch(() => undefined);
      await unmountLayers(deps.helper, paths, { lazy: true });
      await deps.cgroups
        .forSandbox(id)
        .remove()
        .catch(() => undefined);
      await removeSandboxDir(paths);
      continue;
    }
    deps.records.set(id, record);
    await deps.procTable.load(id);
    await deps.reconcile(record);
  }
  const owned = new Set([...deps.records.values()].flatMap((r) => (r.diskId ? [r.diskId] : [])));
  await deps.diskPool.sweep(owned);
  deps.diskPool.prewarm(
    new Set([
      ...(deps.prewarmDiskMb ?? []),
      ...[...deps.records.values()].map((r) => r.spec.resources.diskMb),
    ]),
  );
}

/** What reconciling one sandbox needs from the local driver. */
export interface ReconcileDeps {
  cgroups: CgroupDriver;
  teardownProcesses: (record: SandboxRecord) => Promise<void>;
  save: (record: SandboxRecord) => Promise<void>;
}

/** A running/paused sandbox whose init died (crash, host reboot) becomes 'stopped', cleaned up. */
export async function reconcileRecord(deps: ReconcileDeps, record: SandboxRecord): Promise<void> {
  if (record.state !== 'running' && record.state !== 'paused') {
    // A crash between starting an init and recording it leaves processes in a 'stopped' sandbox.
    if (!record.init && (await deps.cgroups.forSandbox(record.spec.id).pids()).length > 0) {
      await deps.teardownProcesses(record);
    }
    return;
  }
  if (record.init && (await isSameProcess(record.init.pid, record.init.startTime))) return;
  await deps.teardownProcesses(record);
  record.state = 'stopped';
  await deps.save(record);
}
