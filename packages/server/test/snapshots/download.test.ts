import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { createBlobStore } from '../../src/blobs/index.js';
import { snapshotBlobKey } from '../../src/services/snapshot-view.js';
import { describeStores, expectError } from '../support/app.js';
import {
  asInjected,
  auditOf,
  createSandbox,
  HOME,
  onSocket,
  sha256,
  snapshot,
  writeText,
} from './helpers.js';

describeStores(
  'snapshots: create, list, get, signed download',
  (ctx) => {
    let origin = '';
    const listening = async () => {
      if (!origin) origin = await ctx.app.listen({ port: 0, host: '127.0.0.1' });
      return origin;
    };

    it('snapshots a sandbox, lists and reads it, and serves its archive through a signed URL with no credentials', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      await writeText(ctx, sandbox.id, `${HOME}/a.txt`, 'hello snapshot');

      const created = await snapshot(ctx, caller.headers, sandbox.id, { name: 'first' });
      expect(created.statusCode, created.body).toBe(201);
      const snap = created.json();
      expect(snap).toMatchObject({
        sandbox_id: sandbox.id,
        workspace_id: caller.workspaceId,
        name: 'first',
        status: 'ready',
        includes_memory: false,
        template: 'base',
        error: null,
      });
      expect(snap.id).toMatch(/^snap_/);
      expect(snap.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(snap.size_bytes).toBeGreaterThan(0);
      // The archive is in the blob store, with the size and digest the API reports.
      const blobs = createBlobStore(ctx.config);
      const stored = await readFile(await blobs.path!(snapshotBlobKey(snap.id)));
      expect(stored.length).toBe(snap.size_bytes);
      expect(sha256(stored)).toBe(snap.sha256);
      expect((await auditOf(ctx, sandbox.id)).map((e) => e.action)).toContain('sandbox.snapshot');

      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${sandbox.id}/snapshots`,
        headers: caller.headers,
      });
      expect(listed.statusCode).toBe(200);
      expect(listed.json()).toEqual({ data: [snap], next_cursor: null });
      const got = await ctx.app.inject({
        method: 'GET',
        url: `/v1/snapshots/${snap.id}`,
        headers: caller.headers,
      });
      expect(got.json()).toEqual(snap);

      const before = Math.floor(Date.now() / 1000);
      const link = await ctx.app.inject({
        method: 'GET',
        url: `/v1/snapshots/${snap.id}/download`,
        headers: caller.headers,
      });
      expect(link.statusCode, link.body).toBe(200);
      const { url, expires_at } = link.json();
      expect(url.startsWith(`${ctx.config.publicUrl}/v1/snapshots/${snap.id}/archive?`)).toBe(true);
      const expiresAt = Date.parse(expires_at) / 1000;
      expect(expiresAt).toBeGreaterThanOrEqual(before + 900);
      expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 900);

      // Over a real socket, with no Authorization header and no cookie.
      const res = await fetch(onSocket(url, await listening()));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/(zstd|gzip)$/);
      expect(res.headers.get('content-length')).toBe(String(snap.size_bytes));
      expect(res.headers.get('content-disposition')).toContain(snap.id);
      const body = new Uint8Array(await res.arrayBuffer());
      expect(body.length).toBe(snap.size_bytes);
      expect(sha256(body)).toBe(snap.sha256);

      // One byte range.
      const part = await fetch(onSocket(url, origin), { headers: { range: 'bytes=0-3' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 0-3/${snap.size_bytes}`);
      expect(Buffer.from(await part.arrayBuffer())).toEqual(stored.subarray(0, 4));
      const tail = await fetch(onSocket(url, origin), { headers: { range: 'bytes=-5' } });
      expect(Buffer.from(await tail.arrayBuffer())).toEqual(stored.subarray(stored.length - 5));
      expectError(
        await asInjected(
          await fetch(onSocket(url, origin), { headers: { range: `bytes=${stored.length}-` } }),
        ),
        'BAD_REQUEST',
      );
    });

    it('refuses altered, foreign, missing and expired signatures with 403 in the error shape', async () => {
      const caller = await ctx.createCaller();
      const sandbox = await createSandbox(ctx, caller.headers);
      const a = (await snapshot(ctx, caller.headers, sandbox.id, { name: 'a' })).json();
      await writeText(ctx, sandbox.id, `${HOME}/b.txt`, 'only in b');
      const b = (await snapshot(ctx, caller.headers, sandbox.id, { name: 'b' })).json();
      const linkOf = async (id: string, query = '') => {
        const res = await ctx.app.inject({
          method: 'GET',
          url: `/v1/snapshots/${id}/download${query}`,
          headers: caller.headers,
        });
        expect(res.statusCode, res.body).toBe(200);
        return new URL(onSocket(res.json().url, await listening()));
      };
      const good = await linkOf(a.id);
      expect((await fetch(good)).status).toBe(200);

      const sig = good.searchParams.get('sig')!;
      const expires = Number(good.searchParams.get('expires'));
      const variant = (id: string, params: Record<string, string>) => {
        const url = new URL(good);
        url.pathname = `/v1/snapshots/${id}/archive`;
        url.search = new URLSearchParams(params).toString();
        return url;
      };
      const flipped = `${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`;
      const forbidden = [
        variant(a.id, { expires: String(expires), sig: flipped }),
        variant(a.id, { expires: String(expires), sig: `${sig.slice(0, 10)}${sig.slice(11)}x` }),
        variant(a.id, { expires: String(expires + 1), sig }),
        variant(a.id, { expires: String(expires - 1), sig }),
        // A's signature does not open B.
        variant(b.id, { expires: String(expires), sig }),
        // Nor an unknown id (no existence leak: the signature is checked first).
        variant('snap_doesnotexist', { expires: String(expires), sig }),
      ];
      for (const url of forbidden) {
        const body = expectError(await asInjected(await fetch(url)), 'FORBIDDEN');
        expect(body.error.details).toEqual({ reason: 'invalid_or_expired_signature' });
      }
      // An Authorization header does not stand in for the signature.
      expectError(
        await asInjected(
          await fetch(variant(a.id, { expires: String(expires), sig: flipped }), { headers: caller.headers }),
        ),
        'FORBIDDEN',
      );
      expectError(
        await asInjected(await fetch(variant(a.id, { expires: String(expires) }))),
        'VALIDATION_ERROR',
      );

      // Expiry: a 1-second URL works until its second has passed, then never again.
      const short = await linkOf(b.id, '?ttl_seconds=1');
      const until = Number(short.searchParams.get('expires')) * 1000;
      expect(until).toBeLessThanOrEqual(Date.now() + 1000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now()) + 20));
      expectError(await asInjected(await fetch(short)), 'FORBIDDEN');

      for (const ttl of ['0', '86401', 'soon']) {
        expectError(
          await ctx.app.inject({
            method: 'GET',
            url: `/v1/snapshots/${a.id}/download?ttl_seconds=${ttl}`,
            headers: caller.headers,
          }),
          'VALIDATION_ERROR',
        );
      }
      const day = await linkOf(a.id, '?ttl_seconds=86400');
      expect(Number(day.searchParams.get('expires'))).toBeGreaterThan(Date.now() / 1000 + 86_000);
    });
  },
  { runtime: true },
);
