import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { App } from '../../src/app.js';

/** A registered user with a live session cookie and its CSRF token. */
export interface Account {
  userId: string;
  email: string;
  password: string;
  workspaceId: string;
  cookie: string;
  csrf: string;
}

let counter = 0;

/** A unique email for this run. */
export function uniqueEmail(tag = 'user'): string {
  counter += 1;
  return `${tag}-${Date.now().toString(36)}-${counter}@example.test`;
}

/** The `corral_session=…` pair from a response's Set-Cookie, for a Cookie header. */
export function sessionCookie(response: LightMyRequestResponse): string {
  const cookie = response.cookies.find((c) => c.name === 'corral_session');
  if (!cookie) throw new Error(`no session cookie in ${response.statusCode} ${response.body}`);
  return `corral_session=${cookie.value}`;
}

/** Registers a fresh account through the API. */
export async function registerAccount(
  app: App,
  tag = 'user',
  password = 'correct horse battery',
  /** The client address (default 127.0.0.1): per-IP limits count registrations by it. */
  remoteAddress?: string,
): Promise<Account> {
  const email = uniqueEmail(tag);
  const response = await app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    payload: { email, password },
    ...(remoteAddress ? { remoteAddress } : {}),
  });
  expect(response.statusCode, response.body).toBe(201);
  const body = response.json();
  return {
    userId: body.user.id,
    email,
    password,
    workspaceId: body.workspace.id,
    cookie: sessionCookie(response),
    csrf: body.csrf_token,
  };
}

/** Headers for a cookie-authenticated request (with the CSRF token). */
export function asSession(account: Account): Record<string, string> {
  return { cookie: account.cookie, 'x-csrf-token': account.csrf };
}

/** Headers for a key- or JWT-authenticated request. */
export function bearer(secret: string): Record<string, string> {
  return { authorization: `Bearer ${secret}` };
}

/** Creates an API key through the API as `account` (session) and returns the create response body. */
export async function createKey(
  app: App,
  account: Account,
  body: Record<string, unknown> = {},
): Promise<{ id: string; key: string; scopes: string[]; workspace_id: string }> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/account/keys',
    headers: asSession(account),
    payload: { name: 'test key', ...body },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

/** Asserts the error shape and code of a response. */
export function expectError(
  response: LightMyRequestResponse,
  status: number,
  code: string,
): Record<string, unknown> {
  expect(response.statusCode, response.body).toBe(status);
  const body = response.json();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.request_id).toMatch(/^req_/);
  return body.error.details;
}
