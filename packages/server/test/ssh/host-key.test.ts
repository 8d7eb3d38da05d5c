import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { generateHostKeyPair, hostKeyPath, loadOrCreateHostKey } from '../../src/services/ssh/host-key.js';

describe('ssh gateway host key', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-hostkey-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('every generated key parses back (ssh2 alone writes a malformed one about once in 270)', () => {
    for (let i = 0; i < 1500; i++) {
      expect(ssh2.utils.parseKey(generateHostKeyPair().private)).not.toBeInstanceOf(Error);
    }
  });

  it('is created once (file 0600 in a 0700 directory) and then reused', () => {
    const dir = dataDir();
    const first = loadOrCreateHostKey(dir);
    expect(statSync(hostKeyPath(dir)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ssh')).mode & 0o777).toBe(0o700);
    expect(loadOrCreateHostKey(dir)).toBe(first);
  });

  it('replaces a stored key that does not parse', () => {
    const dir = dataDir();
    loadOrCreateHostKey(dir);
    writeFileSync(
      hostKeyPath(dir),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nbroken\n-----END OPENSSH PRIVATE KEY-----\n',
    );
    const replaced = loadOrCreateHostKey(dir);
    expect(ssh2.utils.parseKey(replaced)).not.toBeInstanceOf(Error);
    expect(readFileSync(hostKeyPath(dir), 'utf8')).toBe(replaced);
  });
});
