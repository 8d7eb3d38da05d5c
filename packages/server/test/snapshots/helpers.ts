import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Runtime } from '@corral/runtime';
import { expect } from 'vitest';
import { createApiKey } from '../../src/services/keys.js';
import { type InjectedResponse, memberHeaders, type StoreContext } from '../support/app.js';

/** Where a file written by the tests lives inside a sandbox (its upper layer, kept by snapshots). */
export const HOME = '/home/user';

/** A running sandbox of the caller (`headers`), via the API. */
export async function createSandbox(
  ctx: StoreContext,
  headers: Record<string, string>,
): Promise<{ id: string }> {
  const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload: {} });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** Writes `text` to `path` inside sandbox `id` (straight through the runtime). */
export async function writeText(ctx: StoreContext, id: string, path: string, text: string): Promise<void> {
  await ctx.engine.runtime.files.write(id, path, Readable.from([Buffer.from(text)]));
}

/** The text of `path` inside sandbox `id`, or null when it does not exist. */
export async function readText(ctx: StoreContext, id: string, path: string): Promise<string | null> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await ctx.engine.runtime.files.read(id, path)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  } catch (err) {
    if ((err as { code?: string }).code === 'FILE_NOT_FOUND') return null;
    throw err;
  }
}

/** POST /v1/sandboxes/{id}/snapshots. */
export function snapshot(
  ctx: Pick<StoreContext, 'app'>,
  headers: Record<string, string>,
  sandboxId: string,
  payload: Record<string, unknown> = {},
) {
  return ctx.app.inject({ method: 'POST', url: `/v1/sandboxes/${sandboxId}/snapshots`, headers, payload });
}

/** A member with `role` in `workspaceId`, and a key (all scopes) acting as them there. */
export async function memberKey(
  ctx: StoreContext,
  workspaceId: string,
  role: 'viewer' | 'developer',
): Promise<{ authorization: string }> {
  return memberHeaders(ctx, workspaceId, role);
}

/** Headers of a new key of `userId` in `workspaceId` holding `scopes`. */
export async function keyHeaders(
  ctx: Pick<StoreContext, 'app' | 'store'>,
  userId: string,
  workspaceId: string,
  scopes: string[],
): Promise<{ authorization: string }> {
  const key = await createApiKey(
    { store: ctx.store, audit: ctx.app.audit },
    { userId, workspaceId, name: `key ${scopes.join(' ')}`, scopes },
  );
  return { authorization: `Bearer ${key.key}` };
}

/** sha256 (hex) of bytes. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A fetch Response as the error-shape helper reads it. */
export async function asInjected(res: Response): Promise<InjectedResponse> {
  return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

/** `url` pointed at the listening app (the signed URL names the configured public URL). */
export function onSocket(url: string, origin: string): string {
  const parsed = new URL(url);
  const target = new URL(origin);
  parsed.protocol = target.protocol;
  parsed.host = target.host;
  return parsed.toString();
}

/** The audit actions recorded against sandbox `id`, oldest first. */
export async function auditOf(ctx: StoreContext, id: string): Promise<{ action: string; details: string }[]> {
  return ctx.store.db
    .selectFrom('audit_events')
    .select(['action', 'details'])
    .where('target_id', '=', id)
    .orderBy('created_at', 'asc')
    .execute();
}

/** All bytes of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Runs a bash script in sandbox `id` (through the runtime) and answers its stdout; throws unless it exits 0. */
export async function shellOk(
  runtime: Runtime,
  id: string,
  script: string,
  args: string[] = [],
): Promise<string> {
  // The script waits for one byte, sent once both outputs are read, so no output is lost.
  const proc = await runtime.exec(id, {
    command: '/bin/bash',
    args: ['-c', `IFS= read -r -n 1 -d '' _\n${script}`, 'test', ...args],
    cwd: '/',
  });
  const outputs = Promise.all([readAll(proc.stdout), readAll(proc.stderr)]);
  proc.stdin.end('G');
  const [[stdout, stderr], status] = await Promise.all([outputs, proc.wait()]);
  if (status.exitCode !== 0)
    throw new Error(`script failed (${status.exitCode}): ${stderr.toString().trim()}`);
  return stdout.toString();
}
