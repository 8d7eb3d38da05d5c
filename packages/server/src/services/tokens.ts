import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

/** Every API key starts with this, so that secret scanners and humans recognise one. */
export const API_KEY_PREFIX = 'crl_sk_';
/** How many leading characters of a key are stored in clear and shown in lists. */
export const API_KEY_VISIBLE_CHARS = 12;
/** Lifetime of a JWT minted by `POST /v1/auth/token`, in seconds (15 minutes). */
export const JWT_TTL_SECONDS = 15 * 60;
const JWT_ISSUER = 'corral';
const JWT_AUDIENCE = 'corral-api';

/** 256 random bits as base64url (43 characters). */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * SHA-256 hex of a secret. Right for API keys and session tokens (and wrong for passwords):
 * they carry 256 random bits, so a slow KDF would add nothing against guessing while costing
 * every request; the hash just keeps a stolen database from yielding usable credentials.
 */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two strings (false on length mismatch). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A new API key secret with its stored parts: the display prefix and the SHA-256 hash. */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomToken();
  return { key, prefix: key.slice(0, API_KEY_VISIBLE_CHARS), hash: sha256Hex(key) };
}

/** True when `value` has the shape of an API key (cheap check before any lookup). */
export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX) && /^[A-Za-z0-9_-]{40,100}$/.test(value);
}

/** True when `value` has the shape of a compact JWS (three base64url segments). */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value) && value.length < 8192;
}

/** The claims Corral puts in an access JWT. */
export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Workspace id the key acts in. */
  wid: string;
  scopes: string[];
  /** Id of the API key the token was minted from. */
  kid: string;
  jti: string;
}

/** Signs an access JWT (HS256). `expiresAt` defaults to now + 15 minutes. */
export async function signAccessToken(
  secret: Uint8Array,
  claims: Omit<AccessClaims, 'jti'> & { jti?: string },
  expiresAt: Date = new Date(Date.now() + JWT_TTL_SECONDS * 1000),
): Promise<{ token: string; expiresAt: Date }> {
  const expSeconds = Math.floor(expiresAt.getTime() / 1000);
  const token = await new SignJWT({ wid: claims.wid, scopes: claims.scopes, kid: claims.kid })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setJti(claims.jti ?? randomToken())
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(expSeconds)
    .sign(secret);
  return { token, expiresAt: new Date(expSeconds * 1000) };
}

/**
 * Verifies signature, algorithm, issuer, audience and expiry of an access JWT and returns its
 * claims, or null for anything invalid. Callers must still check the key (`kid`) is live.
 */
export async function verifyAccessToken(secret: Uint8Array, token: string): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
    });
    const { sub, wid, scopes, kid, jti } = payload as Record<string, unknown>;
    if (typeof sub !== 'string' || typeof wid !== 'string' || typeof kid !== 'string') return null;
    if (typeof jti !== 'string' || !Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) {
      return null;
    }
    return { sub, wid, kid, jti, scopes: scopes as string[] };
  } catch (err) {
    if (err instanceof joseErrors.JOSEError) return null;
    throw err;
  }
}
