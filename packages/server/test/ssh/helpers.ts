import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SshGateway, startSshGateway } from '../../src/services/ssh/gateway.js';
import { generateHostKeyPair } from '../../src/services/ssh/host-key.js';
import type { StoreContext } from '../support/app.js';

/** Deadline of one ssh/scp/sftp run (generous: the host may be loaded). */
const RUN_MS = 60_000;

/** What a finished client printed and how it exited. */
export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The gateway of a suite on a loopback port (host key generated for it), a temp dir, and cleanup. */
export interface SshFixture {
  gateway: SshGateway;
  dir: string;
  /** `-o` options every client gets: no known_hosts, no prompts, no config file. */
  common: string[];
  /** Runs `command args…`; `input` goes to stdin (closed either way). */
  run(command: string, args: string[], input?: string | Buffer): Promise<Ran>;
  /** Starts a client that keeps running (for -L); killed on close. */
  start(command: string, args: string[]): ChildProcess;
  /** `ssh -p <port> …common… user@127.0.0.1 …rest`. */
  ssh(user: string, rest: string[], input?: string | Buffer, extra?: string[]): Promise<Ran>;
  close(): Promise<void>;
}

/** Options for a token login: only the `none` method (the token is the user name). */
export const TOKEN_ONLY = [
  '-o',
  'PubkeyAuthentication=no',
  '-o',
  'PasswordAuthentication=no',
  '-o',
  'KbdInteractiveAuthentication=no',
];

/** Options for a key login with exactly `keyFile`. */
export function keyOnly(keyFile: string): string[] {
  return ['-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey'];
}

/** Starts the gateway for `ctx.app` on a free loopback port. */
export async function sshFixture(ctx: StoreContext): Promise<SshFixture> {
  const hostKey = generateHostKeyPair().private;
  const gateway = await startSshGateway(ctx.app, { port: 0, host: '127.0.0.1', hostKey });
  const dir = mkdtempSync(join(tmpdir(), 'corral-ssh-test-'));
  const children = new Set<ChildProcess>();
  const common = [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=20',
  ];
  const env = { PATH: process.env.PATH ?? '', HOME: dir };
  const start = (command: string, args: string[]) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  const run = (command: string, args: string[], input?: string | Buffer) =>
    new Promise<Ran>((resolve, reject) => {
      const child = start(command, args);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => {
        stdout += String(d);
      });
      child.stderr!.on('data', (d) => {
        stderr += String(d);
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${command} ${args.join(' ')} ran over ${RUN_MS} ms: ${stdout} ${stderr}`));
      }, RUN_MS);
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      child.stdin!.on('error', () => {});
      child.stdin!.end(input ?? '');
    });
  return {
    gateway,
    dir,
    common,
    run,
    start,
    ssh: (user, rest, input, extra = TOKEN_ONLY) =>
      run('ssh', ['-p', String(gateway.port), ...common, ...extra, `${user}@127.0.0.1`, ...rest], input),
    async close() {
      for (const child of children) child.kill('SIGKILL');
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A new ed25519 key pair made by ssh-keygen in `dir`: the private key's path and the public line. */
export function sshKeygen(dir: string, name: string): { file: string; publicKey: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', file]);
  return { file, publicKey: execFileSync('cat', [`${file}.pub`], { encoding: 'utf8' }).trim() };
}

/** A loopback TCP port free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it is true; throws after `timeoutMs`. */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
