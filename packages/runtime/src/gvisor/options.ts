import type { NetworkManager } from '../local/network/index.js';
import type { TemplateStore } from '../templates/interface.js';

/** Options of the gvisor driver (the same shape as the factory's RuntimeOptions, plus runsc knobs). */
export interface GvisorRuntimeOptions {
  /** Root of the driver's state; sandboxes live under `<stateDir>/gvisor/`. */
  stateDir: string;
  templates: TemplateStore;
  /**
   * Per-sandbox network namespaces and egress policy (the local driver's manager; share one
   * instance between drivers on a host). Without it sandboxes get a loopback-only network.
   */
  network?: NetworkManager;
  /** runsc binary; default `runsc` from PATH. */
  runsc?: string;
  /** gVisor platform; default `ptrace` (no KVM needed). */
  platform?: 'ptrace' | 'kvm';
  /** Host cgroup parent of every sandbox; default `/corral-gvisor`. */
  cgroupParent?: string;
}
