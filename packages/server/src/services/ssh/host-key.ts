import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';

/** Where the gateway's host key lives under the data directory. */
export function hostKeyPath(dataDir: string): string {
  return join(dataDir, 'ssh', 'host_ed25519');
}

/**
 * The gateway's ed25519 host key (OpenSSH private-key form): read from `<dataDir>/ssh/host_ed25519`,
 * or generated once on first start (directory 0700, file 0600, written atomically) so that
 * clients that pinned it keep trusting the server across restarts.
 */
export function loadOrCreateHostKey(dataDir: string): string {
  const file = hostKeyPath(dataDir);
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const dir = join(dataDir, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const { private: key } = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'corral-ssh-gateway' });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(temp, key, { mode: 0o600, flag: 'wx' });
    chmodSync(temp, 0o600);
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  return key;
}
