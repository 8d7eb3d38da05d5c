import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../../config.js';
import { AUTHENTICATED, SESSION_COOKIE_NAME } from '../../openapi.js';
import { PLAN_IDS } from '../../plans.js';
import { ROLES } from '../../services/access.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../services/passwords.js';

/** An email address: something@something.tld, at most 254 characters. */
export const Email = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^\\s*[^\\s@]+@[^\\s@]+\\.[^\\s@]+\\s*$',
});

/** A password within the policy (8–1024 characters). */
export const Password = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH });

/** A user as the API shows it. */
export const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  is_admin: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});

/** A workspace with the caller's role in it. */
export const WorkspaceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  plan: Type.Enum(PLAN_IDS),
  personal: Type.Boolean(),
  role: Type.Enum(ROLES),
  created_by: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});

/** What login and register answer besides the cookie. */
export const SessionResponse = Type.Object({
  user: UserSchema,
  csrf_token: Type.String({ description: 'Send as X-CSRF-Token on state-changing cookie requests.' }),
  expires_at: Type.String({ format: 'date-time' }),
});

/** Sets the session cookie: HttpOnly, SameSite=Lax, Path=/, Secure when served over https. */
export function setSessionCookie(
  reply: FastifyReply,
  config: Config,
  token: string,
  expiresAt: string,
): void {
  reply.setCookie(SESSION_COOKIE_NAME, token, {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.publicUrl.startsWith('https:'),
    path: '/',
    expires: new Date(expiresAt),
  });
}

/** Clears the session cookie. */
export function clearSessionCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(SESSION_COOKIE_NAME, {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.publicUrl.startsWith('https:'),
    path: '/',
  });
}

/** OpenAPI `security` of authenticated routes (S1's AUTHENTICATED, typed for route schemas). */
export const SECURITY = AUTHENTICATED as unknown as Array<Record<string, string[]>>;
