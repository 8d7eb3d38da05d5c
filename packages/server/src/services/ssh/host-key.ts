import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';

/** Where the gateway's host key lives under the data directory. */
export function hostKeyPath(dataDir: string): string {
  return join(dataDir, 'ssh', 'host_ed25519');
}

/** How many fresh keys `generateHostKey` tries before giving up (each fails ~0.4 % of the time). */
const GENERATE_ATTEMPTS = 10;

/**
 * A new ed25519 key pair (OpenSSH forms) whose private key ssh2 itself can parse back: ssh2's
 * generator writes a malformed key about once in 270 tries (measured: 11 in 3,000), and the
 * gateway could then never start, so each key is checked and a bad one replaced.
 */
export function generateHostKeyPair(): { private: string; public: string } {
  for (let attempt = 0; attempt < GENERATE_ATTEMPTS; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'corral-ssh-gateway' });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error(`could not generate a usable SSH host key in ${GENERATE_ATTEMPTS} attempts`);
}

/**
 * The gateway's ed25519 host key (OpenSSH private-key form): read from `<dataDir>/ssh/host_ed25519`,
 * or generated once on first start (directory 0700, file 0600, written atomically) so that
 * clients that pinned it keep trusting the server across restarts. A stored key that does not
 * parse is replaced.
 */
export function loadOrCreateHostKey(dataDir: string): string {
  const file = hostKeyPath(dataDir);
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8');
    // A key the gateway cannot parse never served a client (no one pinned it): replace it.
    if (!(ssh2.utils.parseKey(stored) instanceof Error)) return stored;
  }
  const dir = join(dataDir, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const key = generateHostKeyPair().private;
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
