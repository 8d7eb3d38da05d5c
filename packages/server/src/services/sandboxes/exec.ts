import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { ExecProcess, ExitStatus } from '@corral/runtime';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { SandboxRow } from '../../store/schema.js';
import type { SandboxService } from './service.js';
import { EnvName } from './spec.js';

/*
 * Running one command in a sandbox (`POST /v1/sandboxes/{id}/exec`): the request shape, the
 * start (secret env merged under the request's, stdin written and closed), the synchronous
 * collection of its output under a per-stream cap, and the bookkeeping after it ends (metrics,
 * activity, one audit event). The streaming answer is in exec-stream.ts.
 */

/** The signals a caller may send to a process it started. */
export const SIGNALS = [
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGQUIT',
] as const;

/** Signals as a set, for checking a name. */
export const SIGNAL_NAMES: ReadonlySet<string> = new Set(SIGNALS);

export const DEFAULT_EXEC_TIMEOUT_SECONDS = 30;
export const MAX_EXEC_TIMEOUT_SECONDS = 86_400;

/** Request env: valid names only (a name the pattern rejects is a 400), up to 32 KiB a value. */
const ExecEnv = Type.Record(EnvName, Type.String({ maxLength: 32_768 }), {
  maxProperties: 200,
  additionalProperties: false,
  description: 'Merged over the sandbox env (its secrets) for this command only.',
});

/** The body of `POST /v1/sandboxes/{id}/exec`. */
export const ExecBody = Type.Object(
  {
    command: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'The program: a name looked up in PATH, or a path. No shell unless you run one (`sh -c`).',
    }),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 131_072 }), { maxItems: 4096 })),
    env: Type.Optional(ExecEnv),
    cwd: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: "Default: the user's home." }),
    ),
    timeout_seconds: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: MAX_EXEC_TIMEOUT_SECONDS,
        default: DEFAULT_EXEC_TIMEOUT_SECONDS,
        description:
          'Kill the whole process tree after this long (then `timed_out` is true). 0 = no limit: the command runs until it exits or the client disconnects.',
      }),
    ),
    stdin: Type.Optional(
      Type.String({ description: 'Written to the standard input (UTF-8), which is then closed.' }),
    ),
    user: Type.Optional(
      Type.Union([Type.Literal('user'), Type.Literal('root')], { description: "Default 'user'." }),
    ),
  },
  { additionalProperties: false },
);
export type ExecInput = Static<typeof ExecBody>;

/** The synchronous answer of an exec. */
export const ExecResultSchema = Type.Object({
  exit_code: Type.Integer({ description: 'The exit code, or 128 + the signal number when killed.' }),
  stdout: Type.String(),
  stderr: Type.String(),
  duration_ms: Type.Number(),
  timed_out: Type.Boolean(),
  truncated: Type.Object(
    { stdout: Type.Boolean(), stderr: Type.Boolean() },
    { description: "True when the stream was longer than the server's per-stream cap and was cut." },
  ),
});
export type ExecResult = Static<typeof ExecResultSchema>;

/** How the answer was delivered: one JSON answer, or a stream (SSE/NDJSON). */
export type ExecMode = 'sync' | 'stream';

/** Why a command did not end on its own: killed when its client left or the server closed, or the runtime failed. */
export type ExecFailure = 'client_disconnected' | 'server_closing' | 'runtime_error';

/** A command that has started: its process and the clock it started on. */
export interface StartedExec {
  proc: ExecProcess;
  /** `performance.now()` when the runtime call was made. */
  startedAt: number;
}

/**
 * Starts `input` in sandbox `row` (whose state the caller has checked): the sandbox's secret
 * env merged under the request's env, stdin written and closed. Throws (mapped runtime errors)
 * when it cannot start; those are counted as `result: error`.
 */
export async function startExec(
  sandboxes: SandboxService,
  row: SandboxRow,
  input: ExecInput,
  mode: ExecMode,
): Promise<StartedExec> {
  const startedAt = performance.now();
  let proc: ExecProcess;
  try {
    const secretEnv = await sandboxes.envFor(row.id);
    proc = await sandboxes.runtime.exec(row.id, {
      command: input.command,
      args: input.args ?? [],
      env: { ...secretEnv, ...input.env },
      ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
      user: input.user ?? 'user',
      timeoutMs: Math.round((input.timeout_seconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS) * 1000),
    });
  } catch (err) {
    sandboxes.metrics.execTotal.inc({ mode, result: 'error' });
    throw err;
  }
  sandboxes.touch(row.id);
  // A command that exits without reading its input closes the pipe: EPIPE is not our failure.
  proc.stdin.on('error', () => undefined);
  proc.stdin.end(input.stdin ?? '');
  return { proc, startedAt };
}

/** One stream's output, cut at a byte cap (the rest was read and dropped). */
interface Collected {
  text: string;
  truncated: boolean;
}

/**
 * Reads `stream` to its end, keeping the first `limitBytes` bytes. Everything past the cap is
 * still read (and dropped) so the process never blocks on a full pipe. The bytes are decoded
 * as UTF-8 (invalid sequences become U+FFFD); a cut never leaves half a character behind.
 */
export function collectOutput(stream: Readable, limitBytes: number): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    stream.on('data', (chunk: Buffer) => {
      if (kept >= limitBytes) {
        truncated = true;
        return;
      }
      const room = limitBytes - kept;
      if (chunk.length > room) {
        truncated = true;
        chunk = chunk.subarray(0, room);
      }
      chunks.push(chunk);
      kept += chunk.length;
    });
    stream.on('error', reject);
    stream.once('end', () => {
      const bytes = Buffer.concat(chunks, kept);
      // In streaming mode the decoder holds back an incomplete trailing character: exactly
      // what a cut needs. A complete stream is decoded whole (a bad tail becomes U+FFFD).
      const text = new TextDecoder().decode(bytes, { stream: truncated });
      resolve({ text, truncated });
    });
  });
}

/**
 * Runs a started command to its end and collects its answer: stdout and stderr read
 * together (neither can block the other), each capped at `limitBytes`.
 */
export async function collectExec(
  started: StartedExec,
  limitBytes: number,
): Promise<{ result: ExecResult; status: ExitStatus }> {
  const { proc } = started;
  const [stdout, stderr, status] = await Promise.all([
    collectOutput(proc.stdout, limitBytes),
    collectOutput(proc.stderr, limitBytes),
    proc.wait(),
  ]);
  const result: ExecResult = {
    exit_code: status.exitCode,
    stdout: stdout.text,
    stderr: stderr.text,
    duration_ms: durationMs(started),
    timed_out: status.timedOut,
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
  };
  return { result, status };
}

/** Milliseconds since the command was started, to 0.01 ms. */
export function durationMs(started: StartedExec): number {
  return Math.round((performance.now() - started.startedAt) * 100) / 100;
}

/**
 * After a command ends — or did not end normally (`status` null, `failure` says why: its
 * client went away and it was killed, or the runtime failed): counts it (`corral_exec_total`
 * with result ok|timeout|error, `corral_exec_duration_seconds`), notes activity, and records
 * one `sandbox.exec` audit event with the command name and exit code only (arguments, env and
 * stdin may hold secrets). The audit insert is not awaited: no answer waits for it.
 */
export function finishExec(
  sandboxes: SandboxService,
  request: FastifyRequest,
  row: SandboxRow,
  input: ExecInput,
  mode: ExecMode,
  started: StartedExec,
  status: ExitStatus | null,
  failure?: ExecFailure,
): void {
  const result = status === null ? 'error' : status.timedOut ? 'timeout' : 'ok';
  sandboxes.metrics.execTotal.inc({ mode, result });
  sandboxes.metrics.execDurationSeconds.observe({ mode }, (performance.now() - started.startedAt) / 1000);
  sandboxes.touch(row.id);
  sandboxes
    .record(request, row, 'sandbox.exec', {
      command: input.command.slice(0, 256),
      mode,
      exit_code: status?.exitCode ?? null,
      timed_out: status?.timedOut ?? false,
      ...(failure ? { failure } : {}),
    })
    .catch((err: unknown) => sandboxes.log.warn({ err, sandbox_id: row.id }, 'could not record exec event'));
}
