import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimNetwork, NetworkInUseError } from '../../src/network-claim.js';
import { testConfig } from '../support/app.js';

const config = testConfig({
  dataDir: mkdtempSync(join(tmpdir(), 'corral-claim-data-')),
  networkTable: 'corral_claimtest',
});

/** A process that is alive until killed, and its pid. */
function liveProcess() {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  return { pid: child.pid!, kill: () => child.kill('SIGKILL') };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('claimNetwork', () => {
  it('claims the table for this process and releases only its own claim', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-claims-'));
    const file = join(dir, 'network-corral_claimtest.pid');
    const release = claimNetwork(config, dir);
    expect(readFileSync(file, 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a table a live server holds, naming it and the settings to change', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-claims-'));
    const other = liveProcess();
    try {
      writeFileSync(join(dir, 'network-corral_claimtest.pid'), String(other.pid));
      expect(() => claimNetwork(config, dir)).toThrow(NetworkInUseError);
      expect(() => claimNetwork(config, dir)).toThrow(new RegExp(`pid ${other.pid}.*CORRAL_NETWORK_TABLE`));
      // The other server's claim is untouched.
      expect(readFileSync(join(dir, 'network-corral_claimtest.pid'), 'utf8')).toBe(String(other.pid));
    } finally {
      other.kill();
    }
  });

  it('takes over the claim of a server that is gone (kill -9)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-claims-'));
    const file = join(dir, 'network-corral_claimtest.pid');
    writeFileSync(file, String(await deadPid()));
    const release = claimNetwork(config, dir);
    expect(readFileSync(file, 'utf8')).toBe(String(process.pid));
    release();
  });
});
