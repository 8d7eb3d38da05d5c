import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { claimNetworkSlot, removeNetwork, type TestNetworkNames } from '../support/runtime.js';

/** The built server, as `npm start` runs it (`npm test` builds it first). */
export const MAIN_JS = join(resolve(import.meta.dirname, '../../../..'), 'packages/server/dist/main.js');

/** A server child process and what it printed so far. */
export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches `marker`; throws if the process exits or the deadline passes. */
  waitFor(marker: RegExp, deadlineMs?: number): Promise<void>;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash: resolves once the process is gone. */
  kill(): Promise<void>;
}

/**
 * Starts `node dist/main.js` with exactly `env` (plus PATH, and CORRAL_SSH_PORT=0 unless `env`
 * sets it: test servers running side by side would all want port 2222).
 */
export function spawnServer(env: Record<string, string>): ServerProcess {
  const child = spawn('node', [MAIN_JS], {
    env: { PATH: process.env.PATH ?? '', CORRAL_SSH_PORT: '0', ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += String(d);
  });
  child.stderr.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    async waitFor(marker, deadlineMs = 30_000) {
      const deadline = Date.now() + deadlineMs;
      while (!marker.test(out)) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`server exited ${child.exitCode ?? child.signalCode}: ${out.slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(`no ${marker} within ${deadlineMs} ms: ${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A network of its own for a server child: env settings, and a cleanup that removes all of it. */
export interface IsolatedNetwork {
  names: TestNetworkNames;
  /** CORRAL_NETWORK_BRIDGE / _SUBNET / _TABLE. */
  env: Record<string, string>;
  /** The netns prefix the server derives from the table name (see src/sandbox-runtime.ts). */
  netnsPrefix: string;
  /** Network namespaces the server's runtime holds right now (its prefix). */
  namespaces(): string[];
  /** Removes the server's namespaces, nft tables and bridge; releases the slot. */
  cleanup(): void;
}

/**
 * Claims a test network slot for a real server process: bridge, subnet and nft table of
 * their own, so a test run never touches a real server's network on the same machine.
 */
export function isolatedNetwork(): IsolatedNetwork {
  const claim = claimNetworkSlot();
  const names = claim.names;
  const tag = createHash('sha256').update(names.tableName).digest('hex').slice(0, 4);
  const netnsPrefix = `crl${tag}-`;
  const namespaces = () =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((name) => name.startsWith(netnsPrefix));
  return {
    names,
    env: {
      CORRAL_NETWORK_BRIDGE: names.bridge,
      CORRAL_NETWORK_SUBNET: names.subnet,
      CORRAL_NETWORK_TABLE: names.tableName,
    },
    netnsPrefix,
    namespaces,
    cleanup() {
      // Claimed sandboxes' names are symlinks to their slots: those first, then the slots.
      for (const name of namespaces().sort(
        (a, b) => Number(a.includes('.slot-')) - Number(b.includes('.slot-')),
      )) {
        try {
          execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
      removeNetwork(names);
      claim.release();
    },
  };
}

/** What of this network the host still has: namespaces, nft tables, the bridge. */
export function networkLeftovers(network: IsolatedNetwork): string[] {
  const left: string[] = network.namespaces().map((name) => `netns ${name}`);
  const tables = execFileSync('nft', ['list', 'tables'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const line of tables.split('\n'))
    if (line.trim().endsWith(` ${network.names.tableName}`)) left.push(line.trim());
  try {
    execFileSync('ip', ['link', 'show', network.names.bridge], { stdio: 'ignore' });
    left.push(`link ${network.names.bridge}`);
  } catch {
    // no such link
  }
  return left;
}

/** The admin's API key the first start wrote into the data directory. */
export function adminKey(dataDir: string): string {
  return JSON.parse(readFileSync(join(dataDir, 'admin-credentials.json'), 'utf8')).api_key as string;
}

/** Mount points under `dir` (left by a runtime in a temp data directory). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

/** Lazily unmounts whatever is still mounted under `dir` (deepest first). */
export function unmountUnder(dir: string): void {
  for (const point of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' });
    } catch {
      // gone meanwhile
    }
  }
}
