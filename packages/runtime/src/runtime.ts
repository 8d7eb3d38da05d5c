import { RuntimeError } from './errors.js';
import { createGvisorRuntime } from './gvisor/index.js';
import type { Isolation, Runtime } from './interface.js';
import { createLocalRuntime } from './local/index.js';
import type { NetworkManager } from './local/network/index.js';
import type { TemplateStore } from './templates/interface.js';

export interface RuntimeOptions {
  isolation: Isolation;
  /** Root of the driver's on-disk state (sandboxes, compiled helper). */
  stateDir: string;
  templates: TemplateStore;
  /** Per-sandbox networking; without it sandboxes get a loopback-only network namespace. The runtime takes ownership: its close() closes the manager. */
  network?: NetworkManager;
  /** Disk sizes (MiB) the local driver keeps ready ahead of demand (the first create of an unseen size formats one inline). */
  prewarmDiskMb?: number[];
}

/** The one factory for sandbox drivers: one line per isolation. */
export function createRuntime(options: RuntimeOptions): Runtime {
  switch (options.isolation) {
    case 'local':
      return createLocalRuntime(options);
    case 'gvisor':
      return createGvisorRuntime(options);
    default:
      throw new RuntimeError('UNSUPPORTED', `isolation ${options.isolation} is not available`);
  }
}
