import type { SandboxSpec } from '../interface.js';
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from '../shared/ids.js';
import { SHIM_SANDBOX_PATH } from './shim.js';

/** Docker's default capability set: what root inside the sandbox holds (gVisor enforces them). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Pid 1 reaps: orphans are re-parented to it and `wait` (waitpid(-1)) collects them; its one
// child, `tail -f /dev/null`, keeps it waiting without a `sleep` that would show up in `pgrep`.
// (gVisor does not auto-reap for an init that ignores SIGCHLD.)
// Its stdio leave runsc's host fds at once (a checkpoint must find no process holding one).
const INIT_ARGS = [
  '/bin/sh',
  '-c',
  'exec </dev/null >/dev/null 2>&1; trap "exit 0" TERM; while :; do tail -f /dev/null & wait; done',
];

/** Host paths and settings a sandbox's OCI config needs besides its spec. */
export interface BundleInputs {
  rootfs: string;
  /** Bind-mounted read-only over /etc/resolv.conf, when the sandbox has a network. */
  resolvConf: string | null;
  /** Joined by the sandbox (runsc --network=sandbox); null = loopback only. */
  netnsPath: string | null;
  /** cgroupsPath (one per controller on v1), e.g. `/corral-gvisor/<id>`. */
  cgroupsPath: string;
  /** The statx shim to preload in every process (see shim.ts), or null. */
  shim: { library: string; preload: string } | null;
  /** Extra host threads the sentry and gofer need over their per-task share. */
  pidsHeadroom: number;
}

/** The OCI runtime config (config.json) runsc starts a sandbox from. */
export function buildOciConfig(spec: SandboxSpec, inputs: BundleInputs): Record<string, unknown> {
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  // gVisor mounts a tmpfs (sandbox memory) on an empty /tmp unless the spec mounts one: bind the
  // overlay's own /tmp so that /tmp lives on the size-capped disk and persists, as with `local`.
  mounts.push({
    destination: '/tmp',
    type: 'bind',
    source: `${inputs.rootfs}/tmp`,
    options: ['rbind', 'rw'],
  });
  if (inputs.shim) {
    mounts.push(
      { destination: SHIM_SANDBOX_PATH, type: 'bind', source: inputs.shim.library, options: ['rbind', 'ro'] },
      {
        destination: '/etc/ld.so.preload',
        type: 'bind',
        source: inputs.shim.preload,
        options: ['rbind', 'ro'],
      },
    );
  }
  if (inputs.resolvConf) {
    mounts.push({
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: inputs.resolvConf,
      options: ['rbind', 'ro'],
    });
  }
  const resources = spec.resources;
  const periodUs = 100_000;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: INIT_ARGS,
      env: [`PATH=${SANDBOX_PATH}`],
      cwd: '/',
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: DEFAULT_CAPABILITIES,
        permitted: DEFAULT_CAPABILITIES,
        inheritable: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1_048_576, soft: 1_048_576 }],
      noNewPrivileges: false,
    },
    root: { path: inputs.rootfs, readonly: false },
    hostname: spec.hostname ?? spec.id.slice(0, 63),
    mounts,
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'user' },
        inputs.netnsPath ? { type: 'network', path: inputs.netnsPath } : { type: 'network' },
      ],
      uidMappings: [{ containerID: 0, hostID: SANDBOX_ID_BASE, size: SANDBOX_ID_COUNT }],
      gidMappings: [{ containerID: 0, hostID: SANDBOX_ID_BASE, size: SANDBOX_ID_COUNT }],
      cgroupsPath: inputs.cgroupsPath,
      resources: {
        memory: { limit: resources.memoryMb * 1024 * 1024 },
        cpu: { quota: Math.max(1000, Math.round(resources.cpu * periodUs)), period: periodUs },
        // Host backstop only: under ptrace each sandbox task costs several host tasks (~7
        // measured), and the sentry dies if the host refuses it a thread.
        pids: { limit: resources.pids * 8 + inputs.pidsHeadroom },
      },
    },
  };
}

/** The process.json for `runsc exec --process`. */
export function buildProcessJson(input: {
  args: string[];
  env: Record<string, string>;
  cwd: string;
  uid: number;
  gid: number;
  terminal: boolean;
  size?: { cols: number; rows: number };
}): Record<string, unknown> {
  const caps = input.uid === 0 ? DEFAULT_CAPABILITIES : [];
  return {
    terminal: input.terminal,
    ...(input.size ? { consoleSize: { width: input.size.cols, height: input.size.rows } } : {}),
    user: { uid: input.uid, gid: input.gid, additionalGids: [input.gid] },
    args: input.args,
    env: Object.entries(input.env).map(([key, value]) => `${key}=${value}`),
    cwd: input.cwd,
    capabilities: {
      bounding: DEFAULT_CAPABILITIES,
      effective: caps,
      permitted: caps,
      inheritable: [],
    },
    noNewPrivileges: false,
  };
}
