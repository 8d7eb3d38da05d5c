import type { CgroupDriver, SandboxCgroup } from './cgroups/index.js';
import { startInit } from './init.js';
import type { NetworkManager, SandboxNetwork } from './network/index.js';
import { unmountLayers } from './rootfs.js';
import { hostnameOf, limitsOf } from './spec.js';
import type { SandboxPaths, SandboxRecord } from './state.js';

/** What starting a sandbox's init needs from the driver. */
export interface BootDeps {
  helper: string;
  cgroups: CgroupDriver;
  network: NetworkManager | undefined;
  /** Read after `prepareFs`, which may give the record its disk (and so its paths). */
  paths(): SandboxPaths;
}

/**
 * Start the init and record it (and the network attachment) in `record`. The filesystem
 * (`prepareFs`), the cgroup and the network are independent, so they are made concurrently:
 * create costs the slowest of them, not their sum. The caller saves the record.
 */
export async function startSandboxInit(
  deps: BootDeps,
  record: SandboxRecord,
  prepareFs: () => Promise<void>,
): Promise<void> {
  const { spec } = record;
  const [cgroupResult, networkResult, fsResult] = await Promise.allSettled([
    deps.cgroups.create(spec.id, limitsOf(spec)),
    deps.network ? deps.network.setup(spec.id, spec.network) : Promise.resolve(null),
    prepareFs(),
  ]);
  for (const result of [cgroupResult, networkResult, fsResult]) {
    if (result.status === 'rejected') throw result.reason;
  }
  const cgroup = (cgroupResult as PromiseFulfilledResult<SandboxCgroup>).value;
  const attachment = (networkResult as PromiseFulfilledResult<SandboxNetwork | null>).value;
  record.network = attachment
    ? { netnsPath: attachment.netnsPath, resolvConf: attachment.resolvConfPath }
    : null;
  const paths = deps.paths();
  try {
    record.init = await startInit({
      helper: deps.helper,
      paths,
      lowerDir: record.lowerDir,
      mountOverlay: true,
      hostname: hostnameOf(spec),
      procsFiles: cgroup.procsFiles,
      netnsPath: record.network?.netnsPath ?? null,
      resolvConf: record.network?.resolvConf ?? null,
    });
  } catch (err) {
    // The helper may have mounted the overlay before failing: never stack a second one later.
    await deps.cgroups
      .forSandbox(spec.id)
      .killAll()
      .catch(() => undefined);
    await unmountLayers(deps.helper, paths).catch(() => undefined);
    throw err;
  }
}
