import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import * as pty from '@lydell/node-pty';
import { RuntimeError } from '../errors.js';
import type { ExecProcess, ExitStatus, PtyProcess } from '../interface.js';
import { ptyStreams } from '../shared/pty-stream.js';

/** How to enter a sandbox: the helper binary, the init's host pid and the cgroup.procs files. */
export interface SandboxEntry {
  helper: string;
  initPid: number;
  /** The init's /proc start time: the helper refuses a pid that no longer is this init. */
  initStartTime: string;
  procsFiles: string[];
}

/** A process started inside a sandbox, as the driver tracks it. */
export interface StartedProcess {
  /** Host pid of the in-sandbox process; also its process group (it calls setsid). */
  hostPid: number;
  /** Pid inside the sandbox's pid namespace (the API's pid). */
  pid: number;
  /** /proc start time of hostPid (ticks since boot), as the helper read it. */
  startTime: string;
  exited: Promise<ExitStatus>;
}

export interface ExecArgs {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  uid: number;
  gid: number;
  timeoutMs: number;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

function helperArgs(entry: SandboxEntry, request: ExecArgs, extra: string[]): string[] {
  const args = [
    'exec',
    '--pid',
    String(entry.initPid),
    '--pid-start',
    entry.initStartTime,
    '--uid',
    String(request.uid),
    '--gid',
    String(request.gid),
  ];
  for (const file of entry.procsFiles) args.push('--cgroup', file);
  if (request.cwd) args.push('--cwd', request.cwd);
  return [...args, ...extra, '--', request.command, ...request.args];
}

function exitFrom(code: number, signal: number, timedOut: boolean): ExitStatus {
  return { exitCode: code, signal: signal ? (SIGNAL_NAMES.get(signal) ?? null) : null, timedOut };
}

/** Signal a process group, ignoring one that is already gone. */
export function signalGroup(hostPid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-hostPid, signal);
  } catch {
    // gone
  }
}

/** Start `request` inside the sandbox with piped stdio; resolves once the process runs. */
export async function startExec(
  entry: SandboxEntry,
  request: ExecArgs,
): Promise<{ process: ExecProcess; started: StartedProcess }> {
  // The command env travels on fd 4, never as the host-root helper's own environment.
  const child = spawn(entry.helper, helperArgs(entry, request, ['--status-fd', '3', '--env-fd', '4']), {
    env: {},
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const envPipe = child.stdio[4] as Writable;
  envPipe.on('error', () => undefined);
  envPipe.end(encodeEnv(request.env));
  const status = child.stdio[3] as Readable;
  const report = readStatus(status);
  const pidLine = await report.pid;
  if (!pidLine) {
    const stderr = await collect(child.stderr!);
    throw new RuntimeError('INTERNAL', `exec failed to start: ${stderr.trim() || 'helper exited'}`);
  }
  const [, hostPid, nsPid] = pidLine.split(' ').map(Number) as [number, number, number];
  const startTime = pidLine.split(' ')[3] ?? '0';
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  if (request.timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      signalGroup(hostPid, 'SIGKILL');
    }, request.timeoutMs);
  }
  // Node resumes (and so discards) a child's stdio streams that nobody listens to when the
  // child exits (child_process flushStdio), so the caller gets streams of our own, piped from
  // the helper's: they hold the output until read, with backpressure on the helper.
  const stdout = child.stdout!.pipe(new PassThrough());
  const stderr = child.stderr!.pipe(new PassThrough());
  // A caller that destroys its stream stops reading for good: close the helper's end too, so
  // the writer gets EPIPE instead of blocking on a full pipe.
  for (const [ours, theirs] of [
    [stdout, child.stdout!],
    [stderr, child.stderr!],
  ] as const) {
    ours.once('close', () => {
      if (!theirs.readableEnded) theirs.destroy();
    });
  }
  // Settles when the helper reports the exit, whether or not anyone reads the output.
  const exited = (async (): Promise<ExitStatus> => {
    let code = 125;
    let signal = 0;
    const exitLine = await report.exit;
    if (exitLine) [, code, signal] = exitLine.split(' ').map(Number) as [number, number, number];
    if (timer) clearTimeout(timer);
    return exitFrom(code, signal, timedOut);
  })();
  // wait() drains any output stream nobody is reading at the time of the call (so a big output
  // cannot block the process on a full pipe), then resolves once both streams have ended. A
  // reader that attaches after the exit but before wait() still gets every byte.
  let waited: Promise<ExitStatus> | undefined;
  const wait = (): Promise<ExitStatus> => {
    if (!waited) {
      for (const stream of [child.stdout!, child.stderr!])
        if (stream.readableFlowing === null) stream.resume();
      waited = Promise.all([exited, ended(child.stdout!), ended(child.stderr!), exitedChild(child)]).then(
        ([status]) => status,
      );
    }
    return waited;
  };
  child.stdin!.on('error', () => undefined);
  const proc: ExecProcess = {
    pid: nsPid,
    stdin: child.stdin!,
    stdout,
    stderr,
    wait,
    kill: (signal = 'SIGKILL') => signalGroup(hostPid, signal),
  };
  return { process: proc, started: { hostPid, pid: nsPid, startTime, exited } };
}

/** Start `request` on a pseudo-terminal inside the sandbox. */
export async function startPty(
  entry: SandboxEntry,
  request: ExecArgs & { cols: number; rows: number; statusFile: string },
): Promise<{ process: PtyProcess; started: StartedProcess }> {
  await rm(request.statusFile, { force: true });
  const envFile = `${request.statusFile}.env`;
  await writeFile(envFile, encodeEnv(request.env), { mode: 0o600, flag: 'wx' });
  const term = pty.spawn(
    entry.helper,
    helperArgs(entry, request, ['--tty', '--status-file', request.statusFile, '--env-file', envFile]),
    {
      name: request.env.TERM ?? 'xterm-256color',
      cols: request.cols,
      rows: request.rows,
      cwd: '/',
      env: { TERM: request.env.TERM ?? 'xterm-256color' },
      encoding: null,
    },
  );
  const { output, write, exited: helperExit } = ptyStreams(term);
  const deadline = Date.now() + 10_000;
  let pidLine: string | undefined;
  let helperDone = false;
  void helperExit.then(() => {
    helperDone = true;
  });
  while (!pidLine) {
    const text = await readFile(request.statusFile, 'utf8').catch(() => '');
    pidLine = text.split('\n').find((l) => l.startsWith('pid '));
    if (pidLine) break;
    if (helperDone || Date.now() > deadline) {
      output.destroy();
      await rm(envFile, { force: true });
      throw new RuntimeError('INTERNAL', 'pty failed to start');
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const [, hostPid, nsPid] = pidLine.split(' ').map(Number) as [number, number, number];
  const startTime = pidLine.split(' ')[3] ?? '0';
  let timedOut = false;
  const timer =
    request.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          signalGroup(hostPid, 'SIGKILL');
        }, request.timeoutMs)
      : undefined;
  const exited = helperExit.then(async ({ exitCode, signal: helperSignal }) => {
    if (timer) clearTimeout(timer);
    const text = await readFile(request.statusFile, 'utf8').catch(() => '');
    await rm(request.statusFile, { force: true });
    const exitLine = text.split('\n').find((l) => l.startsWith('exit '));
    // No status line: the helper itself was killed (the sandbox stopped or was destroyed under
    // the shell), so the shell died by that signal, not with the helper's exit code.
    if (!exitLine) {
      return helperSignal
        ? exitFrom(128 + helperSignal, helperSignal, timedOut)
        : exitFrom(exitCode, 0, timedOut);
    }
    const [, code, signal] = exitLine.split(' ').map(Number) as [number, number, number];
    return exitFrom(code, signal, timedOut);
  });
  const proc: PtyProcess = {
    pid: nsPid,
    output,
    write,
    resize: (cols, rows) => term.resize(cols, rows),
    wait: () => exited,
    kill: (signal = 'SIGKILL') => signalGroup(hostPid, signal),
  };
  return { process: proc, started: { hostPid, pid: nsPid, startTime, exited } };
}

/** The helper's status channel: a `pid …` line once the process runs, an `exit …` line at the end. */
function readStatus(stream: Readable): { pid: Promise<string | null>; exit: Promise<string | null> } {
  let resolvePid: (line: string | null) => void = () => undefined;
  let resolveExit: (line: string | null) => void = () => undefined;
  const pid = new Promise<string | null>((resolve) => {
    resolvePid = resolve;
  });
  const exit = new Promise<string | null>((resolve) => {
    resolveExit = resolve;
  });
  let buffer = '';
  stream.on('data', (chunk) => {
    buffer += String(chunk);
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('pid ')) resolvePid(line);
      else if (line.startsWith('exit ')) resolveExit(line);
      nl = buffer.indexOf('\n');
    }
  });
  const done = () => {
    resolvePid(null);
    resolveExit(null);
  };
  stream.on('end', done);
  stream.on('close', done);
  stream.on('error', done);
  return { pid, exit };
}

function ended(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', resolve);
  });
}

function exitedChild(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return once(child, 'exit');
}

async function collect(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** KEY=VALUE entries, NUL-separated, as the helper reads them. */
function encodeEnv(env: Record<string, string>): Buffer {
  return Buffer.from(
    Object.entries(env)
      .map(([key, value]) => `${key}=${value}\0`)
      .join(''),
  );
}
