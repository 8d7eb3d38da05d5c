import type { Duplex, Readable, Writable } from 'node:stream';

/**
 * The one contract every sandbox driver implements (local, gvisor; docker, kubernetes and the
 * remote agent later). It knows nothing of HTTP, users or billing. Every method that names a
 * sandbox throws RuntimeError('SANDBOX_NOT_FOUND') for an unknown id, and
 * RuntimeError('INVALID_STATE') when the sandbox is in the wrong state for the call.
 */
export interface Runtime {
  /** Driver name: 'local', 'gvisor', … */
  readonly name: string;
  /** What this driver can and cannot do; callers (and the conformance suite) branch on these, never on the name. */
  readonly features: RuntimeFeatures;

  /** Create a sandbox from a spec and start it; resolves once exec is possible. */
  create(spec: SandboxSpec): Promise<SandboxInfo>;
  /** The sandbox, or null when this runtime has no such sandbox. */
  get(id: string): Promise<SandboxInfo | null>;
  /** Every sandbox this runtime holds, whatever its state — used to reconcile after a restart. */
  list(): Promise<SandboxInfo[]>;
  /** Start a stopped or hibernated sandbox. */
  start(id: string): Promise<SandboxInfo>;
  /** Kill all processes; keep the filesystem. */
  stop(id: string): Promise<SandboxInfo>;
  /** Freeze every process (cgroup freezer). */
  pause(id: string): Promise<SandboxInfo>;
  /** Thaw a paused sandbox, or restore a hibernated one with its memory where supported. */
  resume(id: string): Promise<SandboxInfo>;
  /** Persist the filesystem (and memory where the isolation supports it) and free the processes. */
  hibernate(id: string): Promise<SandboxInfo>;
  /** Destroy the sandbox and everything it held (processes, mounts, cgroups, netns, dirs). Idempotent. */
  destroy(id: string): Promise<void>;

  /** Start a process inside the sandbox. */
  exec(id: string, request: ExecRequest): Promise<ExecProcess>;
  /** Start a process on a pseudo-terminal inside the sandbox. */
  pty(id: string, request: PtyRequest): Promise<PtyProcess>;
  /** Processes started through exec/pty that are still running. */
  processes(id: string): Promise<ProcessInfo[]>;
  /** Send a signal to a process started through exec/pty. */
  signal(id: string, pid: number, signal: NodeJS.Signals): Promise<void>;

  /** The sandbox's filesystem, resolved inside its root: no path can reach a host file. */
  readonly files: SandboxFiles;

  /** Listening TCP ports inside the sandbox, with the owning process. */
  ports(id: string): Promise<PortInfo[]>;
  /** A byte stream to a TCP port inside the sandbox (for the preview and SSH proxies). */
  connect(id: string, port: number): Promise<Duplex>;
  /** Replace the network policy of a running sandbox; enforced before this resolves. */
  setNetwork(id: string, policy: NetworkPolicy): Promise<void>;
  /**
   * Change a sandbox's resources, in any state. CPU, memory and pids take effect at once on a
   * running or paused sandbox (its cgroup) and are kept for every later start; a stopped or
   * hibernated sandbox keeps them for its next boot. The disk cap is fixed at create: a
   * `diskMb` different from the current one throws RuntimeError('UNSUPPORTED') and changes
   * nothing. Memory below what the sandbox uses now: the kernel first reclaims what it can
   * (page cache); where that is not enough, cgroup v1 refuses the new limit —
   * RuntimeError('INVALID_ARGUMENT'), nothing changed — and cgroup v2 OOM-kills as the driver's
   * `features.oomScope` says (a process inside, or the whole sandbox), then keeps the new limit.
   * Bad values (as in create) throw INVALID_ARGUMENT. Resolves with the updated info.
   */
  setResources(id: string, resources: Resources): Promise<SandboxInfo>;
  /** Usage counters for metering. */
  stats(id: string): Promise<SandboxStats>;

  /** Write a snapshot of the sandbox to `destPath` (the filesystem's upper layer, compressed; memory too when asked and supported). */
  snapshot(id: string, destPath: string, options?: SnapshotOptions): Promise<SnapshotInfo>;
  /** Replace the filesystem of sandbox `id` (which must exist) with a snapshot, then leave it running. */
  restore(id: string, srcPath: string): Promise<SandboxInfo>;

  /** Release the control plane's handles (watchers, sockets). Sandboxes keep running. */
  close(): Promise<void>;
}

/** Behaviour that differs between isolations, declared by each driver. */
export interface RuntimeFeatures {
  /** hibernate() and snapshot({includeMemory}) keep process memory. */
  memorySnapshots: boolean;
  /** Set-uid programs (sudo) can raise privileges inside the sandbox (false where no_new_privs is forced). */
  setuid: boolean;
  /**
   * What exceeding the memory limit kills: 'process' — the kernel OOM-kills the offending
   * process inside and the sandbox keeps running; 'sandbox' — the whole sandbox is stopped
   * (its filesystem kept), as under gVisor, which has no OOM killer of its own.
   */
  oomScope: 'process' | 'sandbox';
}

export type NetworkPolicy =
  | { mode: 'internet' }
  | { mode: 'none' }
  /** Named domains (`*.` wildcards allowed) and CIDRs; everything else is dropped. */
  | { mode: 'allowlist'; allow: string[] };

export interface Resources {
  /** CPU cores (fractions allowed), enforced as a CFS quota. */
  cpu: number;
  memoryMb: number;
  diskMb: number;
  /** Max processes/threads; the fork-bomb guard. */
  pids: number;
}

export type Isolation = 'local' | 'gvisor';

export interface SandboxSpec {
  /** Caller-chosen unique id (the server uses `sbx_…`). [a-zA-Z0-9_-]{1,64}. */
  id: string;
  /** Template name (`base`, `python`, …) or template id known to the runtime's template store. */
  template: string;
  resources: Resources;
  /** Environment present in every exec and pty of this sandbox. */
  env: Record<string, string>;
  network: NetworkPolicy;
  metadata: Record<string, string>;
  hostname?: string;
}

export type SandboxState = 'running' | 'paused' | 'stopped' | 'hibernated' | 'error';

export interface SandboxInfo {
  id: string;
  state: SandboxState;
  isolation: Isolation;
  template: string;
  resources: Resources;
  network: NetworkPolicy;
  metadata: Record<string, string>;
  createdAt: string;
  /** Set when state is 'error'. */
  error?: string;
}

export interface ExecRequest {
  command: string;
  args?: string[];
  /** Merged over the sandbox env. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox; default the user's home. */
  cwd?: string;
  /** 'user' (default) or 'root'. */
  user?: 'user' | 'root';
  /** Kill the whole process tree after this many ms; 0 or absent = no timeout. */
  timeoutMs?: number;
}

export interface ExitStatus {
  /** The exit code, or 128 + signal number when killed by a signal. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/** A running process. Streams end when the process exits; `wait()` resolves after they end. */
export interface ExecProcess {
  /** An id unique within the sandbox (the pid inside the sandbox). */
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  wait(): Promise<ExitStatus>;
  /** Signal the whole process tree. */
  kill(signal?: NodeJS.Signals): void;
}

export interface PtyRequest extends ExecRequest {
  cols: number;
  rows: number;
}

/**
 * A process on a pseudo-terminal. `output` has backpressure at the source: while it is not read
 * (paused, or its buffer full) the terminal is not read either, so the program blocks on write
 * and memory stays bounded. It ends after the last byte the program wrote, also when the
 * program exited while nobody read; `wait()` resolves at the exit, independently of it. A
 * consumer that stops for good must `destroy()` it (that releases the terminal).
 */
export interface PtyProcess {
  readonly pid: number;
  /** Terminal output, raw bytes. */
  readonly output: Readable;
  /**
   * Type bytes into the terminal, delivered unchanged (a string as UTF-8). Resolves once the
   * kernel has them — so a caller can pace its input — or at once when the terminal is gone
   * (the bytes are dropped). Never rejects.
   */
  write(data: string | Uint8Array): Promise<void>;
  resize(cols: number, rows: number): void;
  wait(): Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals): void;
}

export interface ProcessInfo {
  pid: number;
  command: string;
  args: string[];
  startedAt: string;
  tty: boolean;
}

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileInfo {
  name: string;
  /** Absolute path inside the sandbox. */
  path: string;
  type: FileType;
  size: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  mtime: string;
}

/** File operations; every path is absolute or relative to the user's home, inside the sandbox. */
export interface SandboxFiles {
  list(id: string, path: string): Promise<FileInfo[]>;
  stat(id: string, path: string): Promise<FileInfo>;
  /** Stream a file's bytes, optionally a byte range [start, end] inclusive. */
  read(id: string, path: string, range?: { start: number; end?: number }): Promise<Readable>;
  /** Write atomically (temp file + rename), creating parent directories. Resolves with bytes written. */
  write(id: string, path: string, data: Readable, options?: { mode?: number }): Promise<number>;
  mkdir(id: string, path: string): Promise<void>;
  remove(id: string, path: string, options?: { recursive?: boolean }): Promise<void>;
  move(id: string, from: string, to: string): Promise<void>;
  /** A tar stream (gzip when asked) of `path`'s tree. */
  tarOut(id: string, path: string, options?: { gzip?: boolean }): Promise<Readable>;
  /** Unpack a tar stream under directory `path`; entries that would land outside it are rejected. */
  tarIn(id: string, path: string, data: Readable): Promise<void>;
}

export interface PortInfo {
  port: number;
  /** Bound address inside the sandbox, e.g. '0.0.0.0', '127.0.0.1', '::'. */
  address: string;
  protocol: 'tcp';
  /** Command name of the listening process, when known. */
  process: string | null;
  pid: number | null;
}

export interface SandboxStats {
  cpuSeconds: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  diskBytes: number;
  networkRxBytes: number;
  networkTxBytes: number;
  pids: number;
}

export interface SnapshotOptions {
  /** Include process memory (gvisor only; the local driver throws UNSUPPORTED). */
  includeMemory?: boolean;
}

export interface SnapshotInfo {
  path: string;
  sizeBytes: number;
  /** sha256 of the archive, hex. */
  sha256: string;
  includesMemory: boolean;
  template: string;
}
