import type { SandboxStats } from '../interface.js';
import type { NetworkManager } from '../local/network/index.js';
import { type GvisorPaths, upperBytes } from './layers.js';
import { readCgroupMemory } from './snapshot.js';

/** Usage of one sandbox: runsc's own counters, the host cgroup's peak, the upper dir, the veth. */
export async function sandboxStats(input: {
  id: string;
  upper: GvisorPaths;
  live: boolean;
  /** `runsc events --stats` output. */
  events: () => Promise<string>;
  cgroupPath: string;
  network: NetworkManager | null;
}): Promise<SandboxStats> {
  const stats: SandboxStats = {
    cpuSeconds: 0,
    memoryBytes: 0,
    memoryPeakBytes: 0,
    diskBytes: await upperBytes(input.upper),
    networkRxBytes: 0,
    networkTxBytes: 0,
    pids: 0,
  };
  if (input.live) {
    try {
      const data = JSON.parse(await input.events()).data as {
        cpu?: { usage?: { total?: number } };
        memory?: { usage?: { usage?: number } };
        pids?: { current?: number };
      };
      stats.cpuSeconds = (data.cpu?.usage?.total ?? 0) / 1e9;
      stats.memoryBytes = data.memory?.usage?.usage ?? 0;
      stats.pids = data.pids?.current ?? 0;
    } catch {
      // a sandbox that just exited: zeros
    }
    const cgroup = await readCgroupMemory(input.cgroupPath);
    stats.memoryPeakBytes = Math.max(stats.memoryBytes, cgroup.peakBytes);
  }
  if (input.network) {
    const counters = await input.network.counters(input.id).catch(() => ({ rxBytes: 0, txBytes: 0 }));
    stats.networkRxBytes = counters.rxBytes;
    stats.networkTxBytes = counters.txBytes;
  }
  return stats;
}
