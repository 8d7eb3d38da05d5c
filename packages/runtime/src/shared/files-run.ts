import type { Readable } from 'node:stream';
import { RuntimeError, type RuntimeErrorCode } from '../errors.js';
import type { ExecProcess, ExecRequest, ExitStatus } from '../interface.js';

/** How file and port operations reach a sandbox: the driver's own `exec`. */
export type ExecFn = (sandboxId: string, request: ExecRequest) => Promise<ExecProcess>;

export type ExecUser = 'user' | 'root';

/** Exit code of `fail` in the scripts: stderr then carries `corral-error:CODE`. */
const FAIL_EXIT_CODE = 97;
const ERROR_TAG = 'corral-error:';
/** Cap on what a script may print on stdout into memory (listings of very large directories). */
const MAX_COLLECT_BYTES = 256 * 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;

/**
 * The first byte the host writes to every script's stdin, once it listens to stdout and stderr.
 * Until then the script waits: a process that exited before anyone listened could have its
 * output drained by the driver (or lost by a transport) before the host attached.
 */
export const GO = Buffer.from('G');

// Every script starts with this: wait for GO (bash reads a pipe byte by byte here, so nothing
// after it is consumed), then `fail CODE message`, which reports a failure the host maps
// exactly; anything else that fails is mapped from the C-locale strerror text on stderr.
const PRELUDE = `IFS= read -r -n 1 -d '' _ || exit 96
fail() { printf '${ERROR_TAG}%s\\n' "$1" >&2; shift; printf '%s\\n' "$*" >&2; exit ${FAIL_EXIT_CODE}; }\n`;

const SCRIPT_PATH = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The exec request for a constant bash script; arguments travel as argv ($1, $2 …), never
 * inside the script text, so no path is ever parsed by a shell. The script runs in an empty
 * environment with a fixed PATH: nothing in the sandbox's env (BASH_ENV, exported functions,
 * a PATH through a user-writable directory) can change what it runs, even as root.
 */
export function scriptRequest(script: string, args: string[], user: ExecUser, timeoutMs = 0): ExecRequest {
  return {
    command: '/usr/bin/env',
    args: ['-i', SCRIPT_PATH, 'LC_ALL=C', '/bin/bash', '-c', PRELUDE + script, 'corral-files', ...args],
    user,
    cwd: '/',
    timeoutMs,
  };
}

/** Bound on a non-streaming script (stat, list, mkdir, move, commit …): fail loudly, never hang. */
export const SCRIPT_TIMEOUT_MS = 120_000; // two minutes
/** Removing a large tree can take a while on a slow disk. */
export const REMOVE_TIMEOUT_MS = 600_000; // ten minutes

export interface ScriptResult {
  status: ExitStatus;
  stdout: Buffer;
  stderr: string;
}

/** Read a stream to its end into memory, refusing more than `limit` bytes. */
export async function collect(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > limit) {
      stream.destroy();
      throw new RuntimeError('INTERNAL', `output larger than ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Collect stderr in the background, keeping its head: enough for an error line. */
export function collectStderr(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (total < MAX_STDERR_BYTES) chunks.push(buf);
      total += buf.length;
    });
    const done = () => resolve(Buffer.concat(chunks).toString('utf8').slice(0, MAX_STDERR_BYTES));
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

export interface ScriptOptions {
  /** Kill the script after this long; 0 = never. Default SCRIPT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Bytes for the script's stdin (it sees EOF after them). */
  stdin?: Buffer;
}

/** Run a script to its end; resolves with its output whatever its exit code. */
export async function runScript(
  exec: ExecFn,
  sandboxId: string,
  user: ExecUser,
  script: string,
  args: string[],
  options: ScriptOptions = {},
): Promise<ScriptResult> {
  const request = scriptRequest(script, args, user, options.timeoutMs ?? SCRIPT_TIMEOUT_MS);
  const proc = await exec(sandboxId, request);
  proc.stdin.on('error', () => {});
  const stderr = collectStderr(proc.stderr);
  const stdout = collect(proc.stdout, MAX_COLLECT_BYTES);
  proc.stdin.end(options.stdin ? Buffer.concat([GO, options.stdin]) : GO);
  try {
    const [out, err, status] = await Promise.all([stdout, stderr, proc.wait()]);
    return { status, stdout: out, stderr: err };
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** Run a script and throw the mapped RuntimeError unless it exits 0. */
export async function runChecked(
  exec: ExecFn,
  sandboxId: string,
  user: ExecUser,
  script: string,
  args: string[],
  context: Record<string, unknown>,
  options: ScriptOptions = {},
): Promise<Buffer> {
  const result = await runScript(exec, sandboxId, user, script, args, options);
  if (result.status.exitCode !== 0) throw failureError(result.status, result.stderr, context);
  return result.stdout;
}

// Order matters: the first pattern found in stderr decides. Texts are glibc's C-locale strerror
// and the few coreutils messages that have no errno of their own.
const STDERR_CODES: Array<[RegExp, RuntimeErrorCode]> = [
  [/No such file or directory/, 'FILE_NOT_FOUND'],
  [/Not a directory/, 'NOT_A_DIRECTORY'],
  [/Is a directory|cannot overwrite directory/, 'IS_A_DIRECTORY'],
  [/Permission denied|Operation not permitted|Read-only file system/, 'PERMISSION_DENIED'],
  [/File exists|cannot overwrite non-directory|Directory not empty/, 'FILE_EXISTS'],
  [/Invalid argument|cannot move .* to a subdirectory of itself|are the same file/, 'INVALID_ARGUMENT'],
];

const TAG_CODES = new Set<string>([
  'FILE_NOT_FOUND',
  'FILE_EXISTS',
  'NOT_A_DIRECTORY',
  'IS_A_DIRECTORY',
  'PERMISSION_DENIED',
  'INVALID_ARGUMENT',
]);

/** The RuntimeError for a script that failed, from its `fail` tag or its stderr text. */
export function failureError(
  status: ExitStatus,
  stderr: string,
  context: Record<string, unknown>,
): RuntimeError {
  const lines = stderr.split('\n').filter((line) => line.length > 0);
  const details = { ...context, exitCode: status.exitCode, stderr: lines.slice(0, 5).join('\n') };
  const tagIndex = lines.findIndex((line) => line.startsWith(ERROR_TAG));
  if (status.exitCode === FAIL_EXIT_CODE && tagIndex >= 0) {
    const code = lines[tagIndex]!.slice(ERROR_TAG.length);
    const message = lines[tagIndex + 1] ?? code;
    if (TAG_CODES.has(code)) {
      return new RuntimeError(code as RuntimeErrorCode, message, { ...details, stderr: message });
    }
  }
  if (status.timedOut) return new RuntimeError('INTERNAL', 'file operation timed out', details);
  if (status.signal !== null) {
    return new RuntimeError('INTERNAL', `file operation killed (${status.signal})`, details);
  }
  for (const [pattern, code] of STDERR_CODES) {
    const line = lines.find((l) => pattern.test(l));
    if (line !== undefined) return new RuntimeError(code, stripProgram(line), details);
  }
  const first = lines[0] ?? `exit code ${status.exitCode}`;
  return new RuntimeError('INTERNAL', `file operation failed: ${stripProgram(first)}`, details);
}

// `corral-files: line 3: /x: No such file or directory` → `/x: No such file or directory`.
function stripProgram(line: string): string {
  return line.replace(/^corral-files: line \d+: /, '').replace(/^(\w+): /, '');
}
