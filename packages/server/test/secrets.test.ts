import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeSecretsKey, loadSecretsKey, SecretBox } from '../src/services/secrets.js';

const dirs: string[] = [];
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-secrets-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips any text, with a fresh IV each time and no plaintext in the output', () => {
    for (const plaintext of ['', 's3cr3t-v4lue', 'ünïcødé ✓ 🔑', 'x'.repeat(32_768), 'a.b.c']) {
      const first = box.encrypt(plaintext, 'sandbox_env/sbx_1/NAME');
      const second = box.encrypt(plaintext, 'sandbox_env/sbx_1/NAME');
      expect(first).not.toBe(second);
      expect(first).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]*$/);
      if (plaintext.length > 3) expect(first).not.toContain(plaintext);
      expect(box.decrypt(first, 'sandbox_env/sbx_1/NAME')).toBe(plaintext);
      expect(box.decrypt(second, 'sandbox_env/sbx_1/NAME')).toBe(plaintext);
    }
  });

  it('refuses a value moved to another context (another sandbox or name)', () => {
    const value = box.encrypt('s3cr3t', 'sandbox_env/sbx_1/TOKEN');
    expect(() => box.decrypt(value, 'sandbox_env/sbx_2/TOKEN')).toThrow();
    expect(() => box.decrypt(value, 'sandbox_env/sbx_1/OTHER')).toThrow();
  });

  it('refuses a value made with another key', () => {
    const value = box.encrypt('s3cr3t', 'ctx');
    expect(() => new SecretBox(randomBytes(32)).decrypt(value, 'ctx')).toThrow();
  });

  it('refuses altered values: ciphertext, IV, tag (flipped or truncated), version, shape', () => {
    const value = box.encrypt('s3cr3t-value', 'ctx');
    const [version, iv, tag, body] = value.split('.') as [string, string, string, string];
    const flip = (part: string) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[0] = (bytes[0] ?? 0) ^ 0x01;
      return bytes.toString('base64url');
    };
    for (const altered of [
      [version, iv, tag, flip(body)],
      [version, flip(iv), tag, body],
      [version, iv, flip(tag), body],
      [version, iv, tag.slice(0, 8), body],
      ['v2', iv, tag, body],
      [version, iv, tag],
      ['garbage'],
    ]) {
      expect(() => box.decrypt(altered.join('.'), 'ctx')).toThrow();
    }
  });

  it('takes only 32-byte keys, and does not keep a reference to the caller’s buffer', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
    const key = randomBytes(32);
    const held = new SecretBox(key);
    const value = held.encrypt('kept', 'ctx');
    key.fill(0);
    expect(held.decrypt(value, 'ctx')).toBe('kept');
  });
});

describe('secrets key', () => {
  it('decodes base64 and base64url keys of 32 bytes, and nothing else', () => {
    const key = randomBytes(32);
    expect(decodeSecretsKey(key.toString('base64')).equals(key)).toBe(true);
    expect(decodeSecretsKey(key.toString('base64url')).equals(key)).toBe(true);
    expect(() => decodeSecretsKey(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
    expect(() => decodeSecretsKey(randomBytes(48).toString('base64'))).toThrow(/32 bytes/);
  });

  it('uses a configured key and writes no key file', () => {
    const dataDir = scratch();
    const key = randomBytes(32);
    expect(loadSecretsKey(dataDir, key.toString('base64url')).equals(key)).toBe(true);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('generates <data>/secrets/env.key once (0600, in a 0700 directory) and reads it back after', () => {
    const dataDir = scratch();
    const first = loadSecretsKey(dataDir);
    expect(first.length).toBe(32);
    const file = join(dataDir, 'secrets', 'env.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(decodeSecretsKey(readFileSync(file, 'utf8').trim()).equals(first)).toBe(true);
    // No draft files are left beside it.
    expect(readdirSync(join(dataDir, 'secrets'))).toEqual(['env.key']);
    expect(loadSecretsKey(dataDir).equals(first)).toBe(true);
    // What one start encrypted, the next start (same data directory) decrypts.
    const value = new SecretBox(first).encrypt('survives a restart', 'ctx');
    expect(new SecretBox(loadSecretsKey(dataDir)).decrypt(value, 'ctx')).toBe('survives a restart');
  });

  it('names the key file when it holds no valid key', () => {
    const dataDir = scratch();
    loadSecretsKey(dataDir);
    const file = join(dataDir, 'secrets', 'env.key');
    writeFileSync(file, 'too-short\n');
    expect(() => loadSecretsKey(dataDir)).toThrow(file);
    writeFileSync(file, '');
    expect(() => loadSecretsKey(dataDir)).toThrow(file);
  });
});
