import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/services/keys.js';
import { isoNow } from '../../src/store/index.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';

type Headers = { authorization: string };

/** A running sandbox owned by a fresh caller, plus a viewer and a read-only key in its workspace. */
async function setUp(ctx: StoreContext) {
  const owner = await ctx.createCaller();
  const created = await ctx.app.inject({
    method: 'POST',
    url: '/v1/sandboxes',
    headers: owner.headers,
    payload: {},
  });
  expect(created.statusCode, created.body).toBe(201);
  const viewerUser = await ctx.createUser();
  await ctx.store.db
    .insertInto('members')
    .values({ workspace_id: owner.workspaceId, user_id: viewerUser.id, role: 'viewer', created_at: isoNow() })
    .execute();
  const viewerKey = await createApiKey(
    { store: ctx.store, audit: ctx.app.audit },
    { userId: viewerUser.id, workspaceId: owner.workspaceId, name: 'viewer', scopes: ['*'] },
  );
  const readOnly = await createApiKey(
    { store: ctx.store, audit: ctx.app.audit },
    { userId: owner.userId, workspaceId: owner.workspaceId, name: 'ro', scopes: ['sandbox:read'] },
  );
  return {
    id: created.json().id as string,
    owner: owner.headers,
    viewer: { authorization: `Bearer ${viewerKey.key}` },
    readOnly: { authorization: `Bearer ${readOnly.key}` },
    stranger: (await ctx.createCaller()).headers,
  };
}

/** Runs `script` in the sandbox as its user through the runtime; resolves with stdout. */
async function sh(ctx: StoreContext, id: string, script: string): Promise<string> {
  const proc = await ctx.engine.runtime.exec(id, { command: '/bin/bash', args: ['-c', script] });
  proc.stdin.end();
  const chunks: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => chunks.push(c));
  const status = await proc.wait();
  expect(status.exitCode, script).toBe(0);
  return Buffer.concat(chunks).toString('utf8');
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const q = (path: string) => encodeURIComponent(path);

describeStores(
  'sandboxes: files over HTTP',
  (ctx) => {
    let t: Awaited<ReturnType<typeof setUp>>;
    const url = (rest: string) => `/v1/sandboxes/${t.id}/${rest}`;
    const put = (
      path: string,
      payload: Buffer | string,
      headers: Headers,
      extra: Record<string, string> = {},
    ) =>
      ctx.app.inject({
        method: 'PUT',
        url: url(`files/content?path=${q(path)}`),
        headers: { ...headers, 'content-type': 'application/octet-stream', ...extra },
        payload,
      });
    const get = (path: string, headers: Headers, extra: Record<string, string> = {}) =>
      ctx.app.inject({
        method: 'GET',
        url: url(`files/content?path=${q(path)}`),
        headers: { ...headers, ...extra },
      });

    beforeAll(async () => {
      t = await setUp(ctx);
    });

    it('round-trips a 10 MiB random file byte for byte', async () => {
      const data = randomBytes(10 * 1024 * 1024);
      const written = await put('big/random.bin', data, t.owner);
      expect(written.statusCode, written.body).toBe(201);
      expect(written.json()).toEqual({ path: '/home/user/big/random.bin', size: data.length });
      const read = await get('/home/user/big/random.bin', t.owner);
      expect(read.statusCode).toBe(200);
      expect(read.headers['content-type']).toBe('application/octet-stream');
      expect(read.headers['content-length']).toBe(String(data.length));
      expect(read.headers['accept-ranges']).toBe('bytes');
      expect(sha256(read.rawPayload)).toBe(sha256(data));
    });

    it('stores JSON-looking, text and binary bodies raw, whatever the Content-Type', async () => {
      const json = '{"not": "parsed",  "spaces":   true}\n';
      for (const type of ['application/json', 'text/plain', 'application/x-whatever', 'image/png']) {
        const res = await put('raw/a.json', json, t.owner, { 'content-type': type });
        expect(res.statusCode, `${type}: ${res.body}`).toBe(201);
        expect((await get('raw/a.json', t.owner)).body).toBe(json);
      }
      const binary = Buffer.from([0, 255, 1, 254, 0, 0, 10, 13]);
      expect((await put('raw/b.bin', binary, t.owner)).statusCode).toBe(201);
      expect((await get('raw/b.bin', t.owner)).rawPayload.equals(binary)).toBe(true);
      // No Content-Type at all is raw too; an empty body makes an empty file.
      const none = await ctx.app.inject({
        method: 'PUT',
        url: url(`files/content?path=${q('raw/plain.txt')}`),
        headers: t.owner,
        payload: 'plain',
      });
      expect(none.statusCode, none.body).toBe(201);
      expect((await get('raw/plain.txt', t.owner)).body).toBe('plain');
      const empty = await ctx.app.inject({
        method: 'PUT',
        url: url(`files/content?path=${q('raw/empty')}`),
        headers: t.owner,
      });
      expect(empty.json()).toEqual({ path: '/home/user/raw/empty', size: 0 });
      const emptyRead = await get('raw/empty', t.owner);
      expect(emptyRead.statusCode).toBe(200);
      expect(emptyRead.rawPayload.length).toBe(0);
    });

    it('sets the mode from ?mode= and lists it as octal', async () => {
      expect(await put('bin/run.sh', '#!/bin/sh\necho hi\n', t.owner, {}).then((r) => r.statusCode)).toBe(
        201,
      );
      const exec = await ctx.app.inject({
        method: 'PUT',
        url: url(`files/content?path=${q('bin/tool.sh')}&mode=0755`),
        headers: { ...t.owner, 'content-type': 'text/x-shellscript' },
        payload: '#!/bin/sh\necho tool\n',
      });
      expect(exec.statusCode, exec.body).toBe(201);
      const list = await ctx.app.inject({ method: 'GET', url: url('files?path=bin'), headers: t.viewer });
      expect(list.statusCode).toBe(200);
      const modes = Object.fromEntries(
        list.json().data.map((f: { name: string; mode: string }) => [f.name, f.mode]),
      );
      expect(modes).toEqual({ 'run.sh': '0644', 'tool.sh': '0755' });
      expect((await sh(ctx, t.id, '/home/user/bin/tool.sh')).trim()).toBe('tool');
      const bad = await ctx.app.inject({
        method: 'PUT',
        url: url(`files/content?path=x&mode=999`),
        headers: t.owner,
        payload: 'x',
      });
      expectError(bad, 'VALIDATION_ERROR');
    });

    it('answers Range requests with 206 and exactly those bytes', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      await put('range.txt', data, t.owner);
      const cases: Array<[string, string, string]> = [
        ['bytes=2-5', '2345', 'bytes 2-5/20'],
        ['bytes=15-', 'fghij', 'bytes 15-19/20'],
        ['bytes=-3', 'hij', 'bytes 17-19/20'],
        ['bytes=18-100', 'ij', 'bytes 18-19/20'],
        ['bytes=0-0', '0', 'bytes 0-0/20'],
      ];
      for (const [range, body, contentRange] of cases) {
        const res = await get('range.txt', t.viewer, { range });
        expect(res.statusCode, range).toBe(206);
        expect(res.body, range).toBe(body);
        expect(res.headers['content-range'], range).toBe(contentRange);
        expect(res.headers['content-length'], range).toBe(String(body.length));
      }
      // HEAD: the same headers, no body.
      const head = await ctx.app.inject({
        method: 'HEAD',
        url: url(`files/content?path=range.txt`),
        headers: { ...t.viewer, range: 'bytes=2-5' },
      });
      expect(head.statusCode).toBe(206);
      expect(head.headers['content-length']).toBe('4');
      expect(head.headers['content-range']).toBe('bytes 2-5/20');
      expect(head.body).toBe('');
      const headWhole = await ctx.app.inject({
        method: 'HEAD',
        url: url('files/content?path=range.txt'),
        headers: t.viewer,
      });
      expect(headWhole.statusCode).toBe(200);
      expect(headWhole.headers['content-length']).toBe('20');
      expectError(
        await ctx.app.inject({ method: 'GET', url: url('files/content?path=nope'), headers: t.viewer }),
        'FILE_NOT_FOUND',
      );
      // Several ranges, or a malformed one, are ignored: the whole file.
      for (const range of ['bytes=0-1,4-5', 'items=0-3', 'bytes=5-2']) {
        const res = await get('range.txt', t.viewer, { range });
        expect(res.statusCode, range).toBe(200);
        expect(res.body).toBe(data.toString());
      }
      for (const range of ['bytes=20-', 'bytes=100-200', 'bytes=-0']) {
        const res = expectError(await get('range.txt', t.viewer, { range }), 'BAD_REQUEST');
        expect(res.error.details).toMatchObject({ range, size: 20 });
      }
    });

    it('lists, makes directories, moves and deletes', async () => {
      const mkdir = await ctx.app.inject({
        method: 'POST',
        url: url('files/mkdir'),
        headers: t.owner,
        payload: { path: 'tree/a/b' },
      });
      expect(mkdir.statusCode, mkdir.body).toBe(204);
      await put('tree/a/one.txt', 'one', t.owner);
      const listed = await ctx.app.inject({
        method: 'GET',
        url: url('files?path=tree/a'),
        headers: t.viewer,
      });
      expect(listed.json().data).toEqual([
        expect.objectContaining({ name: 'b', path: '/home/user/tree/a/b', type: 'directory' }),
        expect.objectContaining({
          name: 'one.txt',
          path: '/home/user/tree/a/one.txt',
          type: 'file',
          size: 3,
        }),
      ]);
      for (const entry of listed.json().data) expect(Date.parse(entry.mtime)).not.toBeNaN();
      const home = await ctx.app.inject({ method: 'GET', url: url('files'), headers: t.viewer });
      expect(home.json().data.map((f: { name: string }) => f.name)).toContain('tree');

      const moved = await ctx.app.inject({
        method: 'POST',
        url: url('files/move'),
        headers: t.owner,
        payload: { from: 'tree/a/one.txt', to: '/home/user/tree/a/b/two.txt' },
      });
      expect(moved.statusCode, moved.body).toBe(204);
      expectError(await get('tree/a/one.txt', t.owner), 'FILE_NOT_FOUND');
      expect((await get('tree/a/b/two.txt', t.owner)).body).toBe('one');

      const del = (path: string, recursive?: boolean) =>
        ctx.app.inject({
          method: 'DELETE',
          url: url(`files?path=${q(path)}${recursive === undefined ? '' : `&recursive=${recursive}`}`),
          headers: t.owner,
        });
      expectError(await del('tree/a'), 'CONFLICT');
      expectError(await del('tree/a', false), 'CONFLICT');
      expect((await del('tree/a/b/two.txt')).statusCode).toBe(204);
      expect((await del('tree/a/b')).statusCode).toBe(204);
      await put('tree/a/c/d.txt', 'deep', t.owner);
      expect((await del('tree', true)).statusCode).toBe(204);
      expectError(
        await ctx.app.inject({ method: 'GET', url: url('files?path=tree'), headers: t.owner }),
        'FILE_NOT_FOUND',
      );
      expectError(await del('tree'), 'FILE_NOT_FOUND');
      const actions = await ctx.store.db
        .selectFrom('audit_events')
        .select('action')
        .where('target_id', '=', t.id)
        .execute();
      expect(actions.map((a) => a.action)).toEqual(
        expect.arrayContaining(['sandbox.files.mkdir', 'sandbox.files.move', 'sandbox.files.delete']),
      );
    });

    it('answers 404 for missing paths and 400 for directories and bad input', async () => {
      expectError(await get('no/such/file', t.owner), 'FILE_NOT_FOUND');
      expectError(await get('/home/user', t.owner), 'BAD_REQUEST');
      expectError(
        await ctx.app.inject({ method: 'GET', url: url('files?path=/nowhere'), headers: t.owner }),
        'FILE_NOT_FOUND',
      );
      expectError(await get('', t.owner), 'VALIDATION_ERROR');
      expectError(
        await ctx.app.inject({ method: 'GET', url: url('files/content'), headers: t.owner }),
        'VALIDATION_ERROR',
      );
      expectError(await put('/home/user', 'x', t.owner), 'BAD_REQUEST');
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: url('files/mkdir'),
          headers: t.owner,
          payload: { dir: 'x' },
        }),
        'VALIDATION_ERROR',
      );
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: url('files/move'),
          headers: t.owner,
          payload: { from: 'missing-thing', to: 'elsewhere' },
        }),
        'FILE_NOT_FOUND',
      );
    });

    it("never reaches the host's files: .. and symlinks resolve inside the sandbox", async () => {
      const hostHostname = await readFile('/etc/hostname', 'utf8');
      const viaDots = await get('../../etc/hostname', t.owner);
      expect(viaDots.statusCode).toBe(200);
      expect(viaDots.body).not.toBe(hostHostname);
      expect(viaDots.body).toBe(await sh(ctx, t.id, 'cat /etc/hostname'));

      await sh(ctx, t.id, 'ln -sfn /etc /home/user/hostetc');
      const viaLink = await get('hostetc/hostname', t.owner);
      expect(viaLink.statusCode).toBe(200);
      expect(viaLink.body).toBe(viaDots.body);
      // /etc/shadow of the sandbox is root's: its user may not read it; never the host's bytes.
      const shadow = await get('hostetc/shadow', t.owner);
      expectError(shadow, 'FORBIDDEN');
      const hostShadow = await readFile('/etc/shadow', 'utf8').catch(() => 'unreadable');
      expect(shadow.body).not.toContain(hostShadow.slice(0, 40));
      // A write through the link lands in the sandbox's /etc (and is refused: it is root's).
      expectError(await put('hostetc/corral-escape', 'x', t.owner), 'FORBIDDEN');
      await expect(readFile('/etc/corral-escape')).rejects.toThrow();
    });

    it('downloads a tree as tar.gz and uploads it elsewhere, plain and gzip', async () => {
      const files: Record<string, Buffer> = {
        'proj/readme.md': Buffer.from('# hi\n'),
        'proj/src/main.ts': Buffer.from('console.log(1)\n'),
        'proj/data/blob.bin': randomBytes(300_000),
      };
      for (const [path, data] of Object.entries(files))
        expect((await put(path, data, t.owner)).statusCode).toBe(201);
      const archive = await ctx.app.inject({
        method: 'GET',
        url: url('files/archive?path=proj'),
        headers: t.viewer,
      });
      expect(archive.statusCode, archive.body).toBe(200);
      expect(archive.headers['content-type']).toBe('application/gzip');
      expect(archive.headers['content-disposition']).toBe('attachment; filename="proj.tar.gz"');
      const tarball = archive.rawPayload;
      expect(tarball.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);

      const upload = (path: string, body: Buffer, type: string) =>
        ctx.app.inject({
          method: 'PUT',
          url: url(`files/archive?path=${q(path)}`),
          headers: { ...t.owner, 'content-type': type },
          payload: body,
        });
      const gz = await upload('copy-gz', tarball, 'application/gzip');
      expect(gz.statusCode, gz.body).toBe(204);
      const plain = await upload('/home/user/copy-tar', gunzipSync(tarball), 'application/x-tar');
      expect(plain.statusCode, plain.body).toBe(204);
      for (const root of ['copy-gz', 'copy-tar']) {
        for (const [path, data] of Object.entries(files)) {
          const copy = await get(`${root}/${path.slice('proj/'.length)}`, t.owner);
          expect(copy.statusCode, `${root}/${path}`).toBe(200);
          expect(sha256(copy.rawPayload)).toBe(sha256(data));
        }
      }
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: url('files/archive?path=nothing-here'),
          headers: t.owner,
        }),
        'FILE_NOT_FOUND',
      );
    });

    it('refuses an archive with ../ entries and writes nothing', async () => {
      const evil = tarOf([
        { name: 'ok.txt', data: 'fine' },
        { name: '../escaped.txt', data: 'evil' },
      ]);
      const res = await ctx.app.inject({
        method: 'PUT',
        url: url('files/archive?path=unpack/here'),
        headers: { ...t.owner, 'content-type': 'application/x-tar' },
        payload: evil,
      });
      const body = expectError(res, 'VALIDATION_ERROR');
      expect(res.statusCode).toBe(400);
      expect(JSON.stringify(body.error.details)).toContain('escaped.txt');
      expectError(await get('unpack/escaped.txt', t.owner), 'FILE_NOT_FOUND');
      expectError(await get('unpack/here/ok.txt', t.owner), 'FILE_NOT_FOUND');
      const garbage = await ctx.app.inject({
        method: 'PUT',
        url: url('files/archive?path=unpack/here'),
        headers: { ...t.owner, 'content-type': 'application/gzip' },
        payload: Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(2000)]),
      });
      expect(garbage.statusCode, garbage.body).toBe(400);
    });

    it('checks scope, role and workspace', async () => {
      // Viewers read …
      expect((await get('range.txt', t.viewer)).statusCode).toBe(200);
      // … but never write.
      expectError(await put('v.txt', 'x', t.viewer), 'FORBIDDEN');
      expectError(
        await ctx.app.inject({
          method: 'PUT',
          url: url('files/archive?path=v'),
          headers: { ...t.viewer, 'content-type': 'application/x-tar' },
          payload: tarOf([{ name: 'v.txt', data: 'x' }]),
        }),
        'FORBIDDEN',
      );
      for (const [method, rest, payload] of [
        ['DELETE', 'files?path=range.txt', undefined],
        ['POST', 'files/mkdir', { path: 'v' }],
        ['POST', 'files/move', { from: 'range.txt', to: 'v.txt' }],
      ] as const) {
        expectError(
          await ctx.app.inject({ method, url: url(rest), headers: t.viewer, payload }),
          'FORBIDDEN',
        );
        expectError(
          await ctx.app.inject({ method, url: url(rest), headers: t.readOnly, payload }),
          'FORBIDDEN',
        );
        expectError(
          await ctx.app.inject({ method, url: url(rest), headers: t.stranger, payload }),
          'SANDBOX_NOT_FOUND',
        );
      }
      expectError(await put('v.txt', 'x', t.readOnly), 'FORBIDDEN');
      expectError(await put('v.txt', 'x', t.stranger), 'SANDBOX_NOT_FOUND');
      expectError(await get('range.txt', t.stranger), 'SANDBOX_NOT_FOUND');
      for (const rest of ['files', 'files/archive?path=.', 'git/diff']) {
        expectError(
          await ctx.app.inject({ method: 'GET', url: url(rest), headers: t.stranger }),
          'SANDBOX_NOT_FOUND',
        );
      }
      expectError(await get('v.txt', { authorization: 'Bearer nope' }), 'UNAUTHORIZED');
      await expect(sh(ctx, t.id, 'test ! -e /home/user/v.txt && test ! -e /home/user/v')).resolves.toBe('');
    });

    it('answers 409 INVALID_STATE on a stopped sandbox', async () => {
      const other = await setUp(ctx);
      await ctx.app.sandboxes.setStatus(other.id, 'stopped');
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${other.id}/files`, headers: other.owner }),
        'INVALID_STATE',
      );
      expectError(
        await ctx.app.inject({
          method: 'PUT',
          url: `/v1/sandboxes/${other.id}/files/content?path=x`,
          headers: other.owner,
          payload: 'x',
        }),
        'INVALID_STATE',
      );
    });
  },
  { runtime: true },
);

describeStores(
  'sandboxes: files over a real socket, upload limit',
  (ctx) => {
    const LIMIT = 2_000_000;
    let t: Awaited<ReturnType<typeof setUp>>;
    let base: string;
    beforeAll(async () => {
      t = await setUp(ctx);
      await ctx.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
    });
    const leftovers = () => sh(ctx, t.id, 'ls -A /home/user/up 2>/dev/null || true');

    it('takes an upload under the limit, streamed past the 1 MiB JSON body limit', async () => {
      const data = randomBytes(1_500_000);
      const res = await fetch(`${base}/v1/sandboxes/${t.id}/files/content?path=up/ok.bin`, {
        method: 'PUT',
        headers: { ...t.owner, 'content-type': 'application/json' },
        body: data,
      });
      expect(res.status, await res.clone().text()).toBe(201);
      expect(((await res.json()) as { size: number }).size).toBe(data.length);
      expect((await leftovers()).trim()).toBe('ok.bin');
    });

    it('stops reading the file in the sandbox when a download client goes away', async () => {
      await sh(ctx, t.id, 'head -c 50000000 /dev/zero > /home/user/zeros.bin');
      const readers = async () =>
        (await ctx.engine.runtime.processes(t.id)).filter((p) => p.args.includes('/home/user/zeros.bin'));
      // Read the first bytes over a real socket, then drop the connection. (This needs the
      // runtime's read stream to let go of the exec's stdout when destroyed: see files-transfer.ts.)
      const { req, res } = await new Promise<{ req: ClientRequest; res: IncomingMessage }>((resolve) => {
        const req = httpRequest(`${base}/v1/sandboxes/${t.id}/files/content?path=zeros.bin`, {
          headers: t.owner,
        });
        req.on('error', () => undefined);
        req.on('response', (res) => res.once('data', () => resolve({ req, res: res.pause() })));
        req.end();
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe('50000000');
      expect((await readers()).length).toBe(1);
      req.destroy();
      const deadline = Date.now() + 30_000;
      while ((await readers()).length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(await readers()).toEqual([]);
    });

    it('refuses a declared Content-Length over the limit with 413 before reading', async () => {
      const res = await ctx.app.inject({
        method: 'PUT',
        url: `/v1/sandboxes/${t.id}/files/content?path=up/declared.bin`,
        headers: { ...t.owner, 'content-type': 'application/octet-stream' },
        payload: randomBytes(LIMIT + 1),
      });
      expect(expectError(res, 'PAYLOAD_TOO_LARGE').error.details).toEqual({ limit_bytes: LIMIT });
      expect((await leftovers()).trim()).toBe('ok.bin');
    });

    it('cuts off a chunked upload at the limit with 413 and leaves no partial file', async () => {
      for (const path of ['up/chunked.bin', 'up/ok.bin']) {
        const { status, body } = await chunkedPut(
          `${base}/v1/sandboxes/${t.id}/files/content?path=${path}`,
          t.owner,
          5_000_000,
        );
        expect(status, body).toBe(413);
        expect(JSON.parse(body).error.code).toBe('PAYLOAD_TOO_LARGE');
      }
      // Neither the new file nor a temp file exists; the old ok.bin is untouched.
      expect((await leftovers()).trim()).toBe('ok.bin');
      const size = await sh(ctx, t.id, 'stat -c %s /home/user/up/ok.bin');
      expect(size.trim()).toBe('1500000');
      // A well-formed archive holding one file larger than the limit: cut off while it streams.
      const header = tarOf([{ name: 'huge.bin', data: '' }], 5_000_000).subarray(0, 512);
      const archive = await chunkedPut(
        `${base}/v1/sandboxes/${t.id}/files/archive?path=up/tree`,
        t.owner,
        5_000_000,
        header,
      );
      expect(archive.status, archive.body).toBe(413);
      // The target directory was made up front; nothing landed in it, not even the temp archive.
      expect((await leftovers()).trim().split('\n')).toEqual(['ok.bin', 'tree']);
      expect(await sh(ctx, t.id, 'ls -A /home/user/up/tree')).toBe('');
    });
  },
  { runtime: true, config: { fileUploadLimitBytes: 2_000_000 } },
);

/**
 * PUTs `prefix` then `bytes` random bytes with chunked transfer encoding (no Content-Length)
 * over a real socket.
 */
function chunkedPut(
  url: string,
  headers: Headers,
  bytes: number,
  prefix?: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    // The server may close the connection once it has answered: that is not a failure here.
    req.on('error', (err) => reject(err));
    let sent = 0;
    const chunk = randomBytes(64 * 1024);
    if (prefix) req.write(prefix);
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/**
 * A minimal ustar archive of regular files (names taken as given, `../` included). With
 * `declaredSize`, the first header claims that many bytes (for a body streamed separately).
 */
function tarOf(entries: Array<{ name: string; data: string }>, declaredSize?: number): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from(entry.data);
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0001750\0', 108);
    header.write('0001750\0', 116);
    const size = declaredSize ?? data.length;
    header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    header.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, '0')}\0`,
      136,
    );
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
