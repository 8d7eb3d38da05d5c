import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts secrets at rest with AES-256-GCM. Each value gets a fresh 96-bit IV, and is bound to
 * its place by the additional authenticated data (e.g. `sandbox_id/NAME`), so a ciphertext
 * copied to another row does not decrypt. Format: `v1.<iv>.<tag>.<ciphertext>` (base64url).
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a secrets key is ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** The ciphertext of `plaintext`, bound to `context`. */
  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  /** The plaintext; throws when the value was altered, moved to another context, or made with another key. */
  decrypt(value: string, context: string): string {
    const [version, iv, tag, body] = value.split('.');
    if (version !== VERSION || iv === undefined || tag === undefined || body === undefined) {
      throw new Error('not a v1 secret');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}

/** Decodes a configured key (base64 or base64url of 32 bytes). */
export function decodeSecretsKey(text: string): Buffer {
  const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`CORRAL_SECRETS_KEY must decode to ${KEY_BYTES} bytes`);
  return key;
}

/**
 * The secrets key: `configured` (CORRAL_SECRETS_KEY) when given, else `<data>/secrets/env.key`,
 * generated on first start with mode 0600 in a 0700 directory.
 */
export function loadSecretsKey(dataDir: string, configured?: string): Buffer {
  if (configured) return decodeSecretsKey(configured);
  const dir = join(dataDir, 'secrets');
  const file = join(dir, 'env.key');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Written whole under a private name, then linked into place: a second process starting at
    // the same moment never reads a half-written key, and the first key made wins.
    const draft = join(dir, `.env.key-${process.pid}-${randomBytes(6).toString('hex')}`);
    writeFileSync(draft, `${randomBytes(KEY_BYTES).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(draft, file);
    } catch (err) {
      // EEXIST: another process made it first, and theirs is the key. Anything else is a
      // filesystem without hard links, where a rename is still atomic (the last writer wins).
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' && !existsSync(file)) renameSync(draft, file);
    } finally {
      rmSync(draft, { force: true });
    }
  }
  try {
    return decodeSecretsKey(readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new Error(`${file} does not hold a 32-byte key in base64 (${(err as Error).message})`);
  }
}
