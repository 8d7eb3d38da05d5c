export { memberHeaders } from '../support/app.js';

import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '@corral/runtime';
import { expect } from 'vitest';
import { makeLayer, makeOciImage } from '../../../runtime/test/templates/images.js';
import type { AuditLog, Store } from '../../src/store/index.js';
import { createOwnerKey } from '../support/app.js';

/** Runs a command in a sandbox straight through the runtime; its exit code and output. */
export async function runIn(
  runtime: Runtime,
  id: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = await runtime.exec(id, { command, args, env });
  proc.stdin.end();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  proc.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const status = await proc.wait();
  return {
    exitCode: status.exitCode,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
}

/** A user owning a new workspace, with an API key there (for apps built by `createTestApp`). */
export async function ownerHeaders(
  store: Store,
  audit: AuditLog,
): Promise<{ workspaceId: string; headers: { authorization: string } }> {
  const owner = await createOwnerKey(store, audit);
  return { workspaceId: owner.workspaceId, headers: owner.headers };
}

/**
 * A small OCI image tarball (the runtime suite's fixture builder) with one file holding a
 * random marker, so each call is a new image (a new content-addressed template).
 */
export async function makeTestImage(): Promise<{ tar: Buffer; marker: string }> {
  const work = await mkdtemp(join(tmpdir(), 'corral-srv-img-'));
  const marker = randomBytes(8).toString('hex');
  const layer = await makeLayer(work, {
    files: { 'etc/marker': `${marker}\n`, 'home/user/hello.txt': 'hello\n' },
    dirs: ['tmp', 'root'],
    gzip: true,
  });
  const tarFile = await makeOciImage(work, [{ ...layer, gzip: true }]);
  return { tar: await readFile(tarFile), marker };
}

/** Polls a template until it is no longer `building`; throws after `timeoutMs`. */
export async function waitForTemplate(
  inject: (url: string) => Promise<{ statusCode: number; json(): Record<string, unknown> }>,
  id: string,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await inject(`/v1/templates/${id}`);
    expect(res.statusCode).toBe(200);
    const template = res.json();
    if (template.status !== 'building') return template;
    if (Date.now() > deadline) throw new Error(`template ${id} still building after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
