import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { SandboxSpec } from '../interface.js';
import { SANDBOX_ID_PATTERN } from '../shared/ids.js';
import { buildProcessJson } from './bundle.js';
import { runCommand } from './runsc.js';

// Kill every process but init that holds a host fd (one `find`, not one readlink per fd: process
// creation is the slow path under ptrace), then wait for them to go.
export const DROP_HOST_FD_HOLDERS = `
exec </dev/null >/dev/null 2>&1
holders() {
  for h in $(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname 'host:*' -printf '%h\\n' 2>/dev/null); do
    p=\${h#/proc/}; p=\${p%/fd}
    [ "$p" = 1 ] || echo "$p"
  done
}
for p in $(holders); do kill -9 "$p" 2>/dev/null; done
i=0; while [ -n "$(holders)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
exit 0`;

/** Run a constant root shell script inside a sandbox with no stdio; true when it exits 0. */
export async function runScriptInside(
  scratchDir: string,
  script: string,
  execArgv: (extra: string[]) => string[],
): Promise<boolean> {
  const processJson = buildProcessJson({
    args: ['/bin/sh', '-c', script],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    cwd: '/',
    uid: 0,
    gid: 0,
    terminal: false,
  });
  await mkdir(scratchDir, { recursive: true, mode: 0o700 });
  const file = join(scratchDir, `inside-${randomBytes(6).toString('hex')}.json`);
  await writeFile(file, JSON.stringify(processJson), { mode: 0o600 });
  try {
    return (await runCommand(execArgv(['--process', file]))).exitCode === 0;
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * The pids cap: gVisor enforces RLIMIT_NPROC on its own tasks (per uid; root too, it lacks
 * CAP_SYS_RESOURCE), but `runsc exec` ignores process.json rlimits, and a spec rlimit would also
 * bind the host's sentry (one host uid for every sandbox). So each exec sets it itself, then
 * execs the command (same pid; a missing command exits 127 as from a shell).
 */
export function withProcessLimit(pids: number, argv: string[]): string[] {
  const script = 'ulimit -u "$0" 2>/dev/null || ulimit -p "$0" 2>/dev/null; exec "$@"';
  return ['/bin/sh', '-c', script, String(pids), ...argv];
}

export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

export function validateSpec(spec: SandboxSpec): void {
  if (typeof spec?.id !== 'string' || !SANDBOX_ID_PATTERN.test(spec.id)) {
    throw new RuntimeError('INVALID_ARGUMENT', 'id must match [A-Za-z0-9_-]{1,64}');
  }
  const r = spec.resources;
  const positive = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n > 0;
  if (!r || !positive(r.cpu) || !positive(r.memoryMb) || !positive(r.diskMb) || !positive(r.pids)) {
    throw new RuntimeError('INVALID_ARGUMENT', 'resources need positive cpu, memoryMb, diskMb and pids');
  }
  if (typeof spec.template !== 'string' || spec.template.length === 0) {
    throw new RuntimeError('INVALID_ARGUMENT', 'template is required');
  }
  if (spec.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(spec.hostname)) {
    throw new RuntimeError('INVALID_ARGUMENT', 'bad hostname');
  }
}
