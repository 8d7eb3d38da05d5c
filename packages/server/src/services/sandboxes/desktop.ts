import type { Readable } from 'node:stream';
import type { SandboxRow } from '../../store/schema.js';
import { LAUNCH_SCRIPT, MISSING_PROGRAM_EXIT, PREPARE_SCRIPT, RFB_PORT } from './desktop-script.js';
import type { Cause, SandboxService } from './service.js';
import { VNC_PORT } from './view.js';

/** How long a desktop may take to listen on its ports before it counts as failed. */
export const DESKTOP_READY_TIMEOUT_MS = 30_000;
/** How often the ports are polled while waiting. */
const POLL_MS = 100;
/** The prefix of the row's `error` while its desktop could not start (the sandbox stays running). */
export const DESKTOP_ERROR_PREFIX = 'desktop: ';

/** What one start of a desktop came to. */
export type DesktopResult =
  | { status: 'ready'; seconds: number; alreadyRunning: boolean }
  | { status: 'skipped' }
  | { status: 'error'; error: string };

/** Starts in flight, per service and sandbox: a second caller waits for the first. */
const inFlight = new WeakMap<SandboxService, Map<string, Promise<DesktopResult>>>();

/**
 * Starts the VNC desktop of a running `gui` sandbox (`row.gui === 1`; others: `skipped`) and
 * waits (at most `DESKTOP_READY_TIMEOUT_MS`) until noVNC listens on `VNC_PORT` and the VNC
 * server on its loopback port. Idempotent: a desktop already listening is left as it is, and
 * concurrent calls for one sandbox share one start. Call it after every boot (create, start,
 * resume from hibernated, restore): a stop ends the desktop's processes with all others.
 *
 * Never throws: a failure is logged, recorded (`sandbox.desktop` with status `error`) and
 * stored in the row's `error` (prefixed `desktop: `) while the sandbox stays `running` — the
 * sandbox is usable, only its `vnc_url` is not. A later successful start clears that error.
 */
export function startDesktop(service: SandboxService, row: SandboxRow, cause: Cause): Promise<DesktopResult> {
  if (row.gui !== 1) return Promise.resolve({ status: 'skipped' });
  let starts = inFlight.get(service);
  if (!starts) {
    starts = new Map();
    inFlight.set(service, starts);
  }
  const pending = starts.get(row.id);
  if (pending) return pending;
  const started = runStart(service, row, cause).finally(() => starts.delete(row.id));
  starts.set(row.id, started);
  return started;
}

async function runStart(service: SandboxService, row: SandboxRow, cause: Cause): Promise<DesktopResult> {
  const begun = Date.now();
  let result: DesktopResult;
  try {
    const alreadyRunning = await listening(service, row.id);
    if (!alreadyRunning) await launch(service, row.id);
    result = { status: 'ready', seconds: (Date.now() - begun) / 1000, alreadyRunning };
  } catch (err) {
    result = { status: 'error', error: (err instanceof Error ? err.message : String(err)).slice(0, 1000) };
  }
  await settle(service, row, cause, result);
  return result;
}

/** True when both the VNC server and noVNC listen inside the sandbox. */
async function listening(service: SandboxService, id: string): Promise<boolean> {
  const ports = await service.runtime.ports(id);
  return ports.some((p) => p.port === VNC_PORT) && ports.some((p) => p.port === RFB_PORT);
}

/** Runs the prepare (root) and launch (user) scripts, then waits for the ports. */
async function launch(service: SandboxService, id: string): Promise<void> {
  await runScript(service, id, 'root', PREPARE_SCRIPT);
  await runScript(service, id, 'user', LAUNCH_SCRIPT);
  const deadline = Date.now() + DESKTOP_READY_TIMEOUT_MS;
  while (!(await listening(service, id))) {
    if (Date.now() > deadline) {
      throw new Error(
        `noVNC did not listen on port ${VNC_PORT} within ${DESKTOP_READY_TIMEOUT_MS / 1000} s ` +
          '(logs in /tmp/.corral-desktop inside the sandbox)',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Runs `sh -c script` in the sandbox as `user` (with the sandbox env); throws on a non-zero exit. */
async function runScript(
  service: SandboxService,
  id: string,
  user: 'user' | 'root',
  script: string,
): Promise<void> {
  const env = await service.envFor(id);
  const proc = await service.runtime.exec(id, {
    command: '/bin/sh',
    args: ['-c', script],
    user,
    env,
    timeoutMs: DESKTOP_READY_TIMEOUT_MS,
  });
  proc.stdin.end();
  const [stderr] = await Promise.all([collect(proc.stderr), collect(proc.stdout)]);
  const status = await proc.wait();
  if (status.exitCode === 0) return;
  const text = stderr.trim().split('\n').slice(-5).join('; ');
  if (status.exitCode === MISSING_PROGRAM_EXIT) throw new Error(text);
  throw new Error(`the desktop launcher exited ${status.exitCode}${text ? `: ${text}` : ''}`);
}

/** The text of a stream, at most its last 4 KB. */
async function collect(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text = (text + String(chunk)).slice(-4096);
  }
  return text;
}

/** Logs the outcome; on failure records it and stores it in the row's `error`; on success clears one. */
async function settle(service: SandboxService, row: SandboxRow, cause: Cause, result: DesktopResult) {
  try {
    const current = await service.find(row.id);
    if (result.status === 'ready') {
      service.log.info(
        { sandbox_id: row.id, seconds: result.seconds, already_running: result.alreadyRunning },
        'sandbox desktop ready',
      );
      if (current?.error?.startsWith(DESKTOP_ERROR_PREFIX)) await service.update(row.id, { error: null });
      return;
    }
    if (result.status !== 'error') return;
    service.log.warn({ sandbox_id: row.id, error: result.error }, 'sandbox desktop did not start');
    await service.record(cause, row, 'sandbox.desktop', { status: 'error', error: result.error });
    if (current?.status === 'running') {
      await service.update(row.id, { error: `${DESKTOP_ERROR_PREFIX}${result.error}` });
    }
  } catch (err) {
    service.log.warn({ err, sandbox_id: row.id }, 'could not record the desktop outcome');
  }
}

/**
 * The boot hook of create, start, resume and restore: for a `gui` sandbox that is `running`,
 * starts its desktop (see `startDesktop`) and answers the row as stored afterwards (its
 * `error` tells when the desktop failed); any other row is answered as it is.
 */
export async function withDesktop(
  service: SandboxService,
  row: SandboxRow,
  cause: Cause,
): Promise<SandboxRow> {
  if (row.gui !== 1 || row.status !== 'running') return row;
  await startDesktop(service, row, cause);
  return (await service.find(row.id)) ?? row;
}
