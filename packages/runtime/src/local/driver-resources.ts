import type { Resources } from '../interface.js';
import { applyLiveResources, resizedSpec } from '../shared/resize.js';
import type { CgroupDriver } from './cgroups/index.js';
import { limitsOf, validateSpec } from './spec.js';
import type { SandboxRecord } from './state.js';

/** What setResources needs from the local driver; it runs under the sandbox's lock. */
export interface ResourcesDeps {
  cgroups: CgroupDriver;
  save: (record: SandboxRecord) => Promise<void>;
}

/**
 * Give `record` new resources: written into its cgroup when it has live processes (running or
 * paused), then saved in the record so every later boot (`limitsOf(spec)`) uses them. The disk
 * cap is fixed at create (UNSUPPORTED). A cgroup write that fails puts the old limits back and
 * leaves the record unchanged; the kernel refusing a memory limit below the sandbox's current
 * use (cgroup v1: EBUSY after reclaim) is INVALID_ARGUMENT.
 */
export async function setRecordResources(
  deps: ResourcesDeps,
  record: SandboxRecord,
  resources: Resources,
): Promise<void> {
  const { spec } = record;
  const next = resizedSpec(spec, resources, validateSpec);
  if (record.state === 'running' || record.state === 'paused') {
    const cgroup = deps.cgroups.forSandbox(spec.id);
    await applyLiveResources(
      spec,
      resources.memoryMb,
      () => cgroup.apply(limitsOf(next)),
      () => cgroup.apply(limitsOf(spec)),
    );
  }
  record.spec = next;
  await deps.save(record);
}
