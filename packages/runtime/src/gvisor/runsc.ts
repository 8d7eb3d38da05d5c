import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { RuntimeError } from '../errors.js';

/** How the driver calls runsc: the binary, its state root and the flags every call repeats. */
export interface RunscConfig {
  binary: string;
  /** `--root`: runsc's own container state (survives a control-plane restart). */
  root: string;
  /** `ptrace` works without KVM; `kvm` where /dev/kvm exists. */
  platform: 'ptrace' | 'kvm';
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

// runsc of 2022 (Debian's build) decides "am I still in the host's network namespace?" by
// whether /proc/sys/net/core/rmem_default exists; kernels since 5.x+ namespace that sysctl, so it
// refuses every sandbox network ("cannot run with network enabled in root network namespace").
// The sandbox-creating calls (run, restore) therefore run in a private mount namespace whose
// /proc/sys shows only kernel/, vm/ and fs/ (what runsc reads), without net/. See
// https://github.com/google/gvisor/blob/master/runsc/sandbox/network.go (isRootNS).
// The kernel lets the gofer and sandbox (in a user namespace) mount a new proc only if a fully
// visible proc is already mounted in their namespace; the masked /proc no longer is, so a clean
// proc goes at /run/corral-gvisor/proc first (private to this namespace, unreachable after pivot).
const HIDE_PROC_SYS_NET = `set -e
mkdir -p /run/corral-gvisor/proc
mount -t proc proc /run/corral-gvisor/proc
t=$(mktemp -d /run/corral-gvisor-sys.XXXXXX)
mount --bind /proc/sys "$t"
mount -t tmpfs -o size=16k,mode=0755 corral-sysmask /proc/sys
for d in kernel vm fs; do mkdir /proc/sys/$d; mount --rbind "$t/$d" /proc/sys/$d; done
umount -l "$t"; rmdir "$t"
exec "$@"`;

/** The argv (command first) for one runsc sub-command. */
export function runscArgv(
  config: RunscConfig,
  network: 'sandbox' | 'none',
  args: string[],
  options: { hideNetSysctl?: boolean } = {},
): string[] {
  const argv = [
    config.binary,
    `--root=${config.root}`,
    `--platform=${config.platform}`,
    `--network=${network}`,
    ...args,
  ];
  if (!options.hideNetSysctl) return argv;
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    HIDE_PROC_SYS_NET,
    'corral-runsc',
    ...argv,
  ];
}

/** Run a command to completion, collecting its output; never throws on a non-zero exit. */
export function runCommand(argv: string[], input?: string, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15),
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * Run `runsc run|restore --detach`: the sandbox it leaves behind inherits runsc's stdio, so
 * stdout/stderr go to `logPath` (never a pipe we would wait on) and only the exit is awaited.
 */
export async function runDetached(argv: string[], logPath: string, timeoutMs = 120_000): Promise<RunResult> {
  const log = await open(logPath, 'w', 0o600);
  try {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log.fd, log.fd] });
    const exitCode = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code ?? 137);
      });
    });
    const text = await readFile(logPath, 'utf8');
    return { stdout: '', stderr: text.slice(-4000), exitCode };
  } finally {
    await log.close();
  }
}

/** Run and throw RuntimeError(code) with runsc's last stderr line unless it exits 0. */
export async function runChecked(
  argv: string[],
  what: string,
  code: 'INTERNAL' | 'INVALID_STATE' = 'INTERNAL',
): Promise<string> {
  const result = await runCommand(argv);
  if (result.exitCode !== 0) {
    const line = lastLine(result.stderr) || `exit code ${result.exitCode}`;
    throw new RuntimeError(code, `${what} failed: ${line}`, { stderr: result.stderr.slice(-2000) });
  }
  return result.stdout;
}

export function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}

/**
 * Check that runsc and the host tools the driver needs exist and that runsc can start a
 * sandbox on this platform; PREREQUISITE_MISSING names the fix. Never falls back.
 */
export async function checkPrerequisites(config: RunscConfig): Promise<string> {
  const missing = (what: string, fix: string, cause?: unknown): RuntimeError =>
    new RuntimeError('PREREQUISITE_MISSING', `${what}; fix: ${fix}`, { fix }, { cause });
  if (process.getuid?.() !== 0) throw missing('the gvisor driver must run as root', 'run as root');
  let version: RunResult;
  try {
    version = await runCommand([config.binary, '--version']);
  } catch (err) {
    throw missing(`runsc not found (${config.binary})`, 'apt-get install runsc', err);
  }
  if (version.exitCode !== 0) throw missing('runsc --version failed', 'apt-get install --reinstall runsc');
  for (const tool of ['unshare', 'mount', 'umount', 'tar', 'mkfs.ext4']) {
    const found = await runCommand(['sh', '-c', `command -v ${tool}`]);
    if (found.exitCode !== 0) throw missing(`${tool} not found`, 'apt-get install util-linux tar e2fsprogs');
  }
  if (config.platform === 'kvm') {
    const kvm = await runCommand(['test', '-c', '/dev/kvm']);
    if (kvm.exitCode !== 0) throw missing('platform kvm needs /dev/kvm', "use platform 'ptrace'");
  }
  return lastLine(version.stdout.split('\n')[0] ?? '');
}
