import { spawn } from 'node:child_process';
import { RuntimeError } from '../errors.js';
import { processStartTime } from './proc.js';
import type { SandboxPaths } from './state.js';

export interface InitOptions {
  helper: string;
  paths: SandboxPaths;
  lowerDir: string;
  /** Mount the overlay (false when it is still mounted from an earlier run). */
  mountOverlay: boolean;
  hostname: string;
  procsFiles: string[];
  /** The network manager's persistent netns; null = a fresh loopback-only netns. */
  netnsPath: string | null;
  resolvConf: string | null;
}

/**
 * Start a sandbox's init through the helper: it mounts the overlay, enters the namespaces,
 * pivots into the root and leaves pid 1 running detached from this process (setsid), so the
 * sandbox survives the control plane. Resolves with the init's host pid and start time.
 */
export async function startInit(options: InitOptions): Promise<{ pid: number; startTime: string }> {
  const { paths } = options;
  const args = ['init', '--rootfs', paths.rootfs, '--hostname', options.hostname];
  if (options.mountOverlay) {
    args.push('--lower', options.lowerDir, '--upper', paths.upper, '--work', paths.work);
  }
  if (options.netnsPath) args.push('--netns', options.netnsPath);
  else args.push('--new-netns');
  if (options.resolvConf) args.push('--resolv', options.resolvConf);
  for (const file of options.procsFiles) args.push('--cgroup', file);

  const child = spawn(options.helper, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const pid = Number(stdout.trim());
  if (code !== 0 || !Number.isInteger(pid) || pid <= 0) {
    throw new RuntimeError('INTERNAL', `sandbox init failed: ${stderr.trim() || `exit ${code}`}`);
  }
  const startTime = await processStartTime(pid);
  if (!startTime) throw new RuntimeError('INTERNAL', 'sandbox init exited right after starting');
  return { pid, startTime };
}
