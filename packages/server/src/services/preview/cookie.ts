import { createHash } from 'node:crypto';
import type { UrlSigner } from '../signed-urls.js';

/** The preview cookie's name (host-only: each preview host has its own). */
export const PREVIEW_COOKIE = 'corral_preview';
/** Lifetime of a cookie won with the port's password: 12 hours. */
export const PASSWORD_COOKIE_TTL_SECONDS = 12 * 3600;

const PURPOSE = 'preview-cookie';

/**
 * What a preview cookie stands for: a port token (`tun_…`, checked live on every use, so
 * revoking it ends its cookies) or the port's password (`pw-<fingerprint of the hash>`, so
 * changing or removing the password ends its cookies).
 */
export interface PreviewGrant {
  sandboxId: string;
  port: number;
  /** `tun_…` (a token id) or `pw-…` (a password fingerprint). */
  credential: string;
  /** Unix seconds. */
  expires: number;
}

/** The credential id of a password grant: a short fingerprint of its argon2 hash. */
export function passwordCredential(passwordHash: string): string {
  return `pw-${createHash('sha256').update(passwordHash).digest('base64url').slice(0, 16)}`;
}

function target(grant: Omit<PreviewGrant, 'expires'>, expires: number) {
  return { purpose: PURPOSE, id: `${grant.sandboxId}:${grant.port}:${grant.credential}`, expires };
}

/** The cookie value: `{credential}.{expires}.{HMAC}` (the HMAC also binds the sandbox and port). */
export function encodePreviewCookie(signer: UrlSigner, grant: PreviewGrant): string {
  return `${grant.credential}.${grant.expires}.${signer.sign(target(grant, grant.expires))}`;
}

/** The grant a cookie value carries for this sandbox and port, or null (bad, expired, other host). */
export function decodePreviewCookie(
  signer: UrlSigner,
  value: string,
  sandboxId: string,
  port: number,
  nowMs = Date.now(),
): PreviewGrant | null {
  const parts = value.split('.');
  if (parts.length !== 3) return null;
  const [credential, expiresText, signature] = parts as [string, string, string];
  if (!/^(tun_[0-9A-Za-z]+|pw-[0-9A-Za-z_-]{16})$/.test(credential) || !/^[0-9]{1,12}$/.test(expiresText)) {
    return null;
  }
  const expires = Number(expiresText);
  const grant = { sandboxId, port, credential, expires };
  return signer.verify(target(grant, expires), signature, nowMs) ? grant : null;
}

/**
 * The `Set-Cookie` header of a grant: host-only (no Domain), `Path=/`, HttpOnly,
 * SameSite=Lax, Secure when the server's public URL is https, expiring with the grant.
 */
export function previewSetCookie(
  value: string,
  expires: number,
  secure: boolean,
  nowMs = Date.now(),
): string {
  const maxAge = Math.max(0, expires - Math.floor(nowMs / 1000));
  return `${PREVIEW_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The preview cookie's value from a `Cookie` header, or null. */
export function previewCookieOf(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === PREVIEW_COOKIE) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The `Cookie` header without the preview cookie (undefined when nothing is left). */
export function withoutPreviewCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.slice(0, part.indexOf('=')).trim() !== PREVIEW_COOKIE);
  return kept.length > 0 ? kept.join('; ') : undefined;
}
