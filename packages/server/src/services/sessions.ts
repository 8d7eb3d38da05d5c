import { newId } from '../ids.js';
import { isoNow } from '../store/db.js';
import { deleteExpiredSessionsOfUser, deleteSession, insertSession } from '../store/sessions.js';
import type { ServiceDeps } from './keys.js';
import { randomToken, sha256Hex } from './tokens.js';

/** How long a dashboard session lasts after login, in milliseconds (14 days, not sliding). */
export const SESSION_TTL_MS = 14 * 24 * 60 * 60_000;

/** A new session: the cookie value (`token`, shown once) and the CSRF token to echo back. */
export interface NewSession {
  id: string;
  token: string;
  csrfToken: string;
  expiresAt: string;
}

/**
 * Starts a session for `userId`. The token is 256 random bits; the store keeps its SHA-256
 * (like API keys, high entropy makes a fast hash the right one). The CSRF token is random too
 * and kept in clear: it is not a credential on its own (it is useless without the cookie).
 */
export async function startSession(
  deps: ServiceDeps,
  userId: string,
  client: { ip: string | null; userAgent: string | null },
  db = deps.store.db,
): Promise<NewSession> {
  const token = randomToken();
  const now = isoNow();
  const session: NewSession = {
    id: newId('ses'),
    token,
    csrfToken: randomToken(),
    expiresAt: new Date(Date.now() + SESSION_TTL_MS).toISOString(),
  };
  // Housekeeping on the way in: this user's expired sessions go (nothing else reads them).
  await deleteExpiredSessionsOfUser(db, userId, now);
  await insertSession(db, {
    id: session.id,
    user_id: userId,
    token_hash: sha256Hex(token),
    csrf_token: session.csrfToken,
    created_at: now,
    expires_at: session.expiresAt,
    last_seen_at: now,
    ip: client.ip,
    user_agent: client.userAgent?.slice(0, 512) ?? null,
  });
  return session;
}

/** Ends a session (logout): its cookie stops working at once. */
export async function endSession(
  deps: ServiceDeps,
  session: { sessionId: string; userId: string },
  ip: string | null,
): Promise<void> {
  await deps.store.db.transaction().execute(async (trx) => {
    await deleteSession(trx, session.sessionId);
    await deps.audit.record(
      {
        actorType: 'user',
        actorId: session.userId,
        action: 'session.delete',
        targetType: 'session',
        targetId: session.sessionId,
        ip,
      },
      trx,
    );
  });
}
