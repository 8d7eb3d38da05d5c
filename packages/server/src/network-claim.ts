import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';

/** Where servers record which network table they run on (one file per table). */
export const NETWORK_CLAIMS_DIR = '/run/corral';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Another server already runs on this machine with the same network names. */
export class NetworkInUseError extends Error {
  override readonly name = 'NetworkInUseError';
}

/**
 * Claims the sandbox network (`config.networkTable`, with its bridge and subnet) for this
 * process: two servers on one machine with the same names would delete each other's ready
 * network slots and fight over the DNS forwarder's address. A claim left by a process that is
 * gone (a `kill -9`) is taken over. Returns the release function. Throws NetworkInUseError
 * naming the other process and the settings to change.
 */
export function claimNetwork(config: Config, dir = NETWORK_CLAIMS_DIR): () => void {
  const file = join(dir, `network-${config.networkTable}.pid`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch {
    // not root (the local runtime will say so itself): nothing to guard
    return () => undefined;
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => {
        if (readPid(file) === process.pid) rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return () => undefined;
    }
    const owner = readPid(file);
    if (owner !== null && owner !== process.pid && alive(owner)) {
      throw new NetworkInUseError(
        `another Corral server (pid ${owner}) runs sandboxes on network table "${config.networkTable}" (bridge ${config.networkBridge}); give this one its own CORRAL_NETWORK_BRIDGE, CORRAL_NETWORK_SUBNET and CORRAL_NETWORK_TABLE`,
      );
    }
    rmSync(file, { force: true });
  }
  throw new NetworkInUseError(`could not claim the sandbox network "${config.networkTable}" (${file})`);
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
