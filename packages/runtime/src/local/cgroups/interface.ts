/** Limits written into a sandbox's cgroup. */
export interface CgroupLimits {
  memoryBytes: number;
  /** CFS quota per period; quota = cpu cores × period. */
  cpuQuotaUs: number;
  cpuPeriodUs: number;
  pids: number;
}

export interface CgroupUsage {
  cpuSeconds: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
}

/** One sandbox's cgroup (a directory per v1 controller, or one v2 directory). */
export interface SandboxCgroup {
  /** The cgroup.procs files a process writes its own pid into to join the sandbox. */
  readonly procsFiles: string[];
  apply(limits: CgroupLimits): Promise<void>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Host pids of every process in the sandbox. */
  pids(): Promise<number[]>;
  /** SIGKILL every process and wait until the cgroup is empty. */
  killAll(): Promise<void>;
  usage(): Promise<CgroupUsage>;
  /** Remove the directories (processes must be gone). Idempotent. */
  remove(): Promise<void>;
}

/** A cgroup hierarchy backend: v1 (per-controller trees) or v2 (unified). */
export interface CgroupDriver {
  readonly version: 'v1' | 'v2';
  /** The sandbox's cgroup handle; nothing is created on disk. */
  forSandbox(id: string): SandboxCgroup;
  /** Create (or reuse) the sandbox's cgroup and apply limits. */
  create(id: string, limits: CgroupLimits): Promise<SandboxCgroup>;
}
