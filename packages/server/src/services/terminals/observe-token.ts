import { expiryFor, type UrlSigner } from '../signed-urls.js';

/** The signature purpose of observer tokens. */
export const OBSERVE_PURPOSE = 'terminal-observe';
/** Default lifetime of an observer token: 1 hour. */
export const DEFAULT_OBSERVE_TTL_SECONDS = 3600;
/** Longest lifetime of an observer token: 24 hours. */
export const MAX_OBSERVE_TTL_SECONDS = 24 * 3600;

/** The resource an observer token is bound to: one sandbox and one session, or all its sessions (`*`). */
function targetId(sandboxId: string, sessionId: string | null): string {
  return `${sandboxId}/${sessionId ?? '*'}`;
}

/**
 * A read-only terminal capability: `{expires}.{signature}`, the signature (UrlSigner, HMAC
 * over purpose, `{sandbox}/{session or *}` and expiry) binding it to one sandbox, one session
 * or all of that sandbox's sessions, and an expiry.
 */
export function mintObserveToken(
  signer: UrlSigner,
  sandboxId: string,
  sessionId: string | null,
  ttlSeconds: number,
  nowMs = Date.now(),
): { token: string; expires: number } {
  const expires = expiryFor(ttlSeconds, nowMs);
  const signature = signer.sign({ purpose: OBSERVE_PURPOSE, id: targetId(sandboxId, sessionId), expires });
  return { token: `${expires}.${signature}`, expires };
}

/**
 * True when `token` lets its bearer watch session `sessionId` of sandbox `sandboxId`: signed
 * for that session or for all the sandbox's sessions, and not expired.
 */
export function verifyObserveToken(
  signer: UrlSigner,
  token: string,
  sandboxId: string,
  sessionId: string,
  nowMs = Date.now(),
): boolean {
  const match = /^(\d{1,12})\.([A-Za-z0-9_-]{1,128})$/.exec(token);
  if (!match) return false;
  const expires = Number(match[1]);
  const signature = match[2]!;
  return [sessionId, null].some((sid) =>
    signer.verify({ purpose: OBSERVE_PURPOSE, id: targetId(sandboxId, sid), expires }, signature, nowMs),
  );
}
