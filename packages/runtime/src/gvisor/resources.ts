import { access, readFile, writeFile } from 'node:fs/promises';
import type { Resources, SandboxState } from '../interface.js';
import { write } from '../local/cgroups/util.js';
import { applyLiveResources, resizedSpec } from '../shared/resize.js';
import { buildOciConfig } from './bundle.js';
import { validateSpec } from './inside.js';
import type { GvisorPaths } from './layers.js';
import { type GvisorRecord, writeJsonAtomic } from './state.js';

/** `linux.resources` of an OCI config: what runsc writes into the sandbox's host cgroup. */
interface HostLimits {
  memory: { limit: number };
  cpu: { quota: number; period: number };
  pids: { limit: number };
}

interface OciConfig {
  linux: { resources: HostLimits };
}

/** The host limits the bundle (bundle.ts) gives `spec`, with `pidsHeadroom` for the sentry's threads. */
function hostLimitsOf(spec: GvisorRecord['spec'], pidsHeadroom: number): HostLimits {
  const config = buildOciConfig(spec, {
    rootfs: '',
    resolvConf: null,
    netnsPath: null,
    cgroupsPath: '',
    shim: null,
    pidsHeadroom,
  }) as unknown as OciConfig;
  return config.linux.resources;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** Write `limits` into the host cgroup `cgroupPath` (runsc's layout: per controller on v1, one dir on v2). */
async function writeHostLimits(cgroupPath: string, limits: HostLimits): Promise<void> {
  const root = '/sys/fs/cgroup';
  if (await exists(`${root}/cgroup.controllers`)) {
    const dir = `${root}${cgroupPath}`;
    await write(`${dir}/memory.max`, limits.memory.limit);
    await write(`${dir}/cpu.max`, `${limits.cpu.quota} ${limits.cpu.period}`);
    await write(`${dir}/pids.max`, limits.pids.limit);
    return;
  }
  // runsc sets no memsw limit (the spec has no swap), so only limit_in_bytes moves.
  await write(`${root}/memory${cgroupPath}/memory.limit_in_bytes`, limits.memory.limit);
  await write(`${root}/cpu${cgroupPath}/cpu.cfs_period_us`, limits.cpu.period);
  await write(`${root}/cpu${cgroupPath}/cpu.cfs_quota_us`, limits.cpu.quota);
  await write(`${root}/pids${cgroupPath}/pids.max`, limits.pids.limit);
}

/**
 * Give a gvisor sandbox new resources. runsc 2022 has no `update`, so a live (running or paused)
 * sandbox gets them written straight into its host cgroup — memory and CPU bind the sentry at
 * once (a sandbox over the new memory limit is killed whole: oomScope 'sandbox'); the pids cap is
 * the `ulimit -u` every later exec sets, plus the host backstop — and `config.json` is updated
 * to match. Every boot rebuilds config.json from the saved spec. The disk cap is fixed at create.
 */
export async function setGvisorResources(
  paths: GvisorPaths,
  cgroupPath: string,
  record: GvisorRecord,
  state: SandboxState,
  resources: Resources,
): Promise<void> {
  const { spec } = record;
  const next = resizedSpec(spec, resources, validateSpec);
  if (state === 'running' || state === 'paused') {
    const config = JSON.parse(await readFile(paths.config, 'utf8')) as OciConfig;
    const booted = config.linux.resources;
    // The headroom the boot added to the pids backstop, so that the new limit keeps it.
    const headroom = booted.pids.limit - hostLimitsOf(spec, 0).pids.limit;
    const limits = hostLimitsOf(next, headroom);
    await applyLiveResources(
      spec,
      resources.memoryMb,
      () => writeHostLimits(cgroupPath, limits),
      () => writeHostLimits(cgroupPath, booted),
    );
    config.linux.resources = limits;
    await writeFile(paths.config, JSON.stringify(config, null, 2), { mode: 0o600 });
  }
  record.spec = next;
  await writeJsonAtomic(paths.record, record);
}
