import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The archive compressor: zstd when installed, gzip otherwise. */
export function compressorCommand(): string {
  return existsSync('/usr/bin/zstd') ? 'zstd -q -3 -T0 -c' : 'gzip -c';
}

/** The sha256 hasher: OpenSSL (SHA extensions, ~3× coreutils) when installed, else sha256sum. */
export function hasherCommand(): string {
  return existsSync('/usr/bin/openssl') ? 'openssl dgst -sha256 -r' : 'sha256sum';
}

/**
 * Run `cmd args` with stdin closed and stdout to `stdoutFd` (an open file) or collected; resolves
 * with the collected stdout, rejects with the tail of stderr when the exit code is not 0. The
 * data a pipeline moves goes through OS pipes and files, never through Node.
 */
export function run(cmd: string, args: string[], stdoutFd?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk) => {
      if (err.length < 4096) err += String(chunk);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`${cmd} exited ${code ?? signal}: ${err.trim()}`));
    });
  });
}

/**
 * Run a bash pipeline with `pipefail` (a failure anywhere fails the whole); paths go in as
 * positional parameters (`$1`…), never into the script text.
 */
export function runPipeline(script: string, params: string[]): Promise<string> {
  return run('bash', ['-c', `set -o pipefail; ${script}`, 'corral-snapshot', ...params]);
}
