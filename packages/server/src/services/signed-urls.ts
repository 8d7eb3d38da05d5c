import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** Default lifetime of a signed URL: 15 minutes. */
export const DEFAULT_URL_TTL_SECONDS = 15 * 60;
/** Longest lifetime a caller may ask for: 24 hours. */
export const MAX_URL_TTL_SECONDS = 24 * 3600;

/** What a signature is bound to: its purpose (`snapshot-download`), one resource id, an expiry. */
export interface SignedTarget {
  purpose: string;
  id: string;
  /** Unix seconds after which the signature is refused. */
  expires: number;
}

/**
 * Signs and checks time-limited capability URLs: HMAC-SHA256 over `{purpose}\n{id}\n{expires}`
 * (base64url), so a signature fits one resource, one purpose and one expiry only — changing
 * any of them, `expires` included, fails the check. Comparison is constant-time.
 */
export class UrlSigner {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('a URL signing key is at least 32 bytes');
    this.#key = Buffer.from(key);
  }

  /**
   * The signer for a deployment: a key derived (HKDF-SHA256) from the JWT secret, so every
   * server sharing that secret accepts the others' URLs and a restart keeps them valid, while
   * the key itself differs from the one signing tokens.
   */
  static fromSecret(secret: string): UrlSigner {
    const key = hkdfSync('sha256', secret, 'corral', 'corral/signed-urls/v1', 32);
    return new UrlSigner(Buffer.from(key));
  }

  /** The signature of `target`. */
  sign(target: SignedTarget): string {
    return createHmac('sha256', this.#key)
      .update(`${target.purpose}\n${target.id}\n${target.expires}`)
      .digest('base64url');
  }

  /** True when `signature` signs `target` and `target.expires` has not passed at `nowMs`. */
  verify(target: SignedTarget, signature: string, nowMs = Date.now()): boolean {
    if (!Number.isSafeInteger(target.expires) || nowMs >= target.expires * 1000) return false;
    // Compared as text, not decoded: base64url decoding ignores some trailing bits, and an
    // altered signature must never pass.
    const expected = Buffer.from(this.sign(target), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/**
 * The expiry (unix seconds) of a URL made at `nowMs` living `ttlSeconds`; rounded down, so a
 * URL never outlives its TTL.
 */
export function expiryFor(ttlSeconds: number, nowMs = Date.now()): number {
  return Math.floor(nowMs / 1000) + ttlSeconds;
}
