import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as pty from '@lydell/node-pty';
import { RuntimeError } from '../errors.js';
import type { ExecProcess, ExitStatus, PtyProcess } from '../interface.js';
import { ptyStreams } from '../shared/pty-stream.js';

/** What starting a process in one sandbox needs from the driver. */
export interface ExecTarget {
  /** Full argv of `runsc … exec <extra> <id>` given the exec's extra flags. */
  execArgv(extra: string[]): string[];
  /** Scratch directory for process.json and pid files. */
  scratchDir: string;
  /** Signal the process group led by `pid` inside the sandbox. */
  killGroup(pid: number, signal: NodeJS.Signals): Promise<void>;
  /** Called once the process has exited (to drop it from the tracked list). */
  onExit(pid: number): void;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);
const PID_WAIT_MS = 30_000;
// After `runsc exec` returns, a background child inside may still hold the donated stdout;
// drain what is already there, then end our streams (the process itself has exited).
const DRAIN_AFTER_EXIT_MS = 150;

/**
 * `runsc exec` reports a process killed by signal N as exit 128+N, like a shell; read it back
 * that way (an explicit `exit 143` is indistinguishable — documented in GVISOR.md).
 */
export function exitStatusFrom(code: number, timedOut: boolean): ExitStatus {
  // 128 with no signal: the sandbox was torn down under the process (stop, destroy), which
  // kills everything in it with SIGKILL; `runsc exec` cannot report more.
  if (code === 128) return { exitCode: 128 + 9, signal: 'SIGKILL', timedOut };
  const signal = code > 128 && code <= 128 + 64 ? (SIGNAL_NAMES.get(code - 128) ?? null) : null;
  return { exitCode: code, signal, timedOut };
}

async function prepareFiles(target: ExecTarget, processJson: Record<string, unknown>) {
  await mkdir(target.scratchDir, { recursive: true, mode: 0o700 });
  const base = join(target.scratchDir, randomBytes(8).toString('hex'));
  const processFile = `${base}.json`;
  const pidFile = `${base}.pid`;
  await writeFile(processFile, JSON.stringify(processJson), { mode: 0o600 });
  return {
    processFile,
    pidFile,
    cleanup: () => Promise.all([rm(processFile, { force: true }), rm(pidFile, { force: true })]),
  };
}

/** Resolve with the in-sandbox pid once runsc has written it, or null if `exited` comes first. */
async function waitForPid(pidFile: string, exited: Promise<unknown>): Promise<number | null> {
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const deadline = Date.now() + PID_WAIT_MS;
  for (let delay = 2; Date.now() < deadline; delay = Math.min(delay * 2, 20)) {
    const text = await readFile(pidFile, 'utf8').catch(() => '');
    const pid = Number.parseInt(text.trim(), 10);
    if (pid > 0) return pid;
    if (done) return null;
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new RuntimeError('INTERNAL', 'runsc exec did not report a pid');
}

function startFailure(stderr: string): ExitStatus & { message: string } {
  const message = stderr.trim().split('\n').pop() ?? 'exec failed';
  // runsc resolves the executable itself and fails before any process exists.
  if (/no such file|not found|executable file not found/i.test(message)) {
    return { exitCode: 127, signal: null, timedOut: false, message };
  }
  if (/permission denied/i.test(message)) return { exitCode: 126, signal: null, timedOut: false, message };
  throw new RuntimeError('INTERNAL', `runsc exec failed: ${message}`);
}

function childExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.on('exit', (code, signal) =>
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 9)),
    );
    child.on('error', () => resolve(127));
  });
}

/** Start a process with piped stdio through `runsc exec --process`. */
export async function startExec(
  target: ExecTarget,
  processJson: Record<string, unknown>,
  timeoutMs: number,
): Promise<ExecProcess> {
  const files = await prepareFiles(target, processJson);
  const argv = target.execArgv(['--process', files.processFile, '--internal-pid-file', files.pidFile]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  return wrapChild(target, child, files, timeoutMs);
}

async function wrapChild(
  target: ExecTarget,
  child: ChildProcess,
  files: { pidFile: string; cleanup: () => Promise<unknown> },
  timeoutMs: number,
): Promise<ExecProcess> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const earlyErr: Buffer[] = [];
  const stderrDone = new Promise((r) => child.stderr!.once('close', r).once('end', r));
  child.stdout!.pipe(stdout, { end: false });
  child.stderr!.on('data', (chunk: Buffer) => earlyErr.push(chunk));
  child.stderr!.pipe(stderr, { end: false });
  child.stdin!.on('error', () => {});
  const exitCode = childExit(child);
  const pid = await waitForPid(files.pidFile, exitCode);
  if (pid === null) {
    await stderrDone;
    void files.cleanup();
    const failure = startFailure(Buffer.concat(earlyErr).toString('utf8'));
    stdout.end();
    stderr.end();
    return {
      pid: 0,
      stdin: child.stdin!,
      stdout,
      stderr,
      wait: async () => ({ exitCode: failure.exitCode, signal: null, timedOut: false }),
      kill: () => {},
    };
  }
  earlyErr.length = 0;
  const run = superviseStarted(target, pid, timeoutMs);
  const { kill } = run;
  const status = exitCode.then(async (code) => {
    run.exited();
    void files.cleanup();
    await drain(child);
    child.stdout!.unpipe(stdout);
    child.stderr!.unpipe(stderr);
    child.stdout!.destroy();
    child.stderr!.destroy();
    stdout.end();
    stderr.end();
    return exitStatusFrom(code, run.timedOut);
  });
  return { pid, stdin: child.stdin!, stdout, stderr, wait: () => status, kill };
}

/**
 * Kill and deadline of a started exec: `kill` signals its process group until `exited()` is
 * called; when `timeoutMs` (> 0) passes first, it is killed and `timedOut` turns true.
 */
function superviseStarted(target: ExecTarget, pid: number, timeoutMs: number) {
  const run = {
    timedOut: false,
    hasExited: false,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (!run.hasExited) void target.killGroup(pid, signal).catch(() => undefined);
    },
    exited: () => {
      run.hasExited = true;
      if (timer) clearTimeout(timer);
      target.onExit(pid);
    },
  };
  const onTimeout = () => {
    run.timedOut = true;
    run.kill('SIGKILL');
  };
  const timer = timeoutMs > 0 ? setTimeout(onTimeout, timeoutMs) : null;
  return run;
}

function drain(child: ChildProcess): Promise<void> {
  const closed = (s: NodeJS.ReadableStream) =>
    new Promise<void>((r) => {
      if ((s as PassThrough).readableEnded || (s as PassThrough).destroyed) r();
      else s.once('close', () => r()).once('end', () => r());
    });
  return Promise.race([
    Promise.all([closed(child.stdout!), closed(child.stderr!)]).then(() => undefined),
    new Promise<void>((r) => setTimeout(r, DRAIN_AFTER_EXIT_MS)),
  ]);
}

/** Start a process on a host pseudo-terminal: runsc hands its own tty to the sandboxed process. */
export async function startPty(
  target: ExecTarget,
  processJson: Record<string, unknown>,
  size: { cols: number; rows: number },
  timeoutMs: number,
): Promise<PtyProcess> {
  const files = await prepareFiles(target, processJson);
  const argv = target.execArgv(['--process', files.processFile, '--internal-pid-file', files.pidFile]);
  const term = pty.spawn(argv[0]!, argv.slice(1), {
    name: 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    // Raw bytes: a decoder would replace bytes that are not UTF-8.
    encoding: null,
  });
  const { output, write, exited } = ptyStreams(term);
  const exitCode = exited.then(({ exitCode: code, signal }) => (signal ? 128 + signal : code));
  const pid = await waitForPid(files.pidFile, exitCode);
  if (pid === null) {
    void files.cleanup();
    const code = await exitCode;
    return {
      pid: 0,
      output,
      write: async () => {},
      resize: () => {},
      wait: async () => ({ exitCode: code === 128 ? 127 : code, signal: null, timedOut: false }),
      kill: () => {},
    };
  }
  const run = superviseStarted(target, pid, timeoutMs);
  const { kill } = run;
  const status = exitCode.then((code) => {
    run.exited();
    void files.cleanup();
    return exitStatusFrom(code, run.timedOut);
  });
  return {
    pid,
    output,
    write: (data) => (run.hasExited ? Promise.resolve() : write(data)),
    resize: (cols, rows) => {
      if (!run.hasExited) term.resize(cols, rows);
    },
    wait: () => status,
    kill,
  };
}
