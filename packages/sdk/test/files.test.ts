import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BadRequestError,
  ConflictError,
  type Corral,
  FileNotFoundError,
  type Sandbox,
} from '../src/index.js';
import { readFileStream, toNodeReadable } from '../src/node.js';
import { type SdkTestServer, startServer } from './support/server.js';

describe('sdk: files', () => {
  let server: SdkTestServer;
  let corral: Corral;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    corral = await server.client();
    box = await corral.sandboxes.create({ template: 'base' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('writes text and bytes, reads them back as bytes and text', async () => {
    const written = await box.files.write('notes/hello.txt', 'hello, sandbox\n');
    expect(written).toEqual({ path: '/home/user/notes/hello.txt', size: 15 });
    expect(await box.files.readText('notes/hello.txt')).toBe('hello, sandbox\n');
    const bytes = new Uint8Array(256).map((_, i) => i);
    await box.files.write('/tmp/all.bin', bytes);
    expect(await box.files.read('/tmp/all.bin')).toEqual(bytes);
    await box.files.write('blob.txt', new Blob(['from a blob']));
    expect(await box.files.readText('blob.txt')).toBe('from a blob');
    await box.files.write('script.sh', '#!/bin/sh\necho ran\n', { mode: '0755' });
    expect((await box.exec('./script.sh')).stdout).toBe('ran\n');
  });

  it('writes from a web ReadableStream and a Node Readable, streamed', async () => {
    const chunks = ['alpha ', 'beta ', 'gamma'];
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    await box.files.write('web.txt', web);
    expect(await box.files.readText('web.txt')).toBe('alpha beta gamma');

    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    const node = Readable.from(
      (function* () {
        for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
      })(),
    );
    expect(await box.files.write('node.bin', node)).toMatchObject({ size: big.length });
    expect(Buffer.from(await box.files.read('node.bin')).equals(big)).toBe(true);
  });

  it('reads as a web stream, a byte range, and a Node Readable', async () => {
    await box.files.write('range.txt', '0123456789');
    const stream = await box.files.readStream('range.txt');
    expect(stream).toBeInstanceOf(ReadableStream);
    expect(await new Response(stream).text()).toBe('0123456789');
    expect(new TextDecoder().decode(await box.files.read('range.txt', { range: { start: 2, end: 4 } }))).toBe(
      '234',
    );
    expect(await box.files.readText('range.txt', { range: { start: 7 } })).toBe('789');
    expect(await box.files.readText('range.txt', { range: { suffix: 3 } })).toBe('789');
    const readable = await readFileStream(box, 'range.txt', { range: { start: 5 } });
    expect(readable).toBeInstanceOf(Readable);
    expect((await buffer(readable)).toString()).toBe('56789');
    expect((await buffer(toNodeReadable(await box.files.readStream('range.txt')))).toString()).toBe(
      '0123456789',
    );
  });

  it('lists, makes directories, moves, checks and removes', async () => {
    await box.files.mkdir('tree/a/b');
    await box.files.write('tree/a/file.txt', 'f');
    const listed = await box.files.list('tree/a');
    expect(listed.map((e) => [e.name, e.type])).toEqual([
      ['b', 'directory'],
      ['file.txt', 'file'],
    ]);
    expect(listed[1]).toMatchObject({ path: '/home/user/tree/a/file.txt', size: 1, mode: '0644' });
    expect((await box.files.list()).map((e) => e.name)).toContain('tree');
    await box.files.move('tree/a/file.txt', 'tree/moved.txt');
    expect(await box.files.exists('tree/a/file.txt')).toBe(false);
    expect(await box.files.exists('tree/moved.txt')).toBe(true);
    expect(await box.files.exists('tree')).toBe(true);
    await expect(box.files.remove('tree')).rejects.toBeInstanceOf(ConflictError);
    await box.files.remove('tree/moved.txt');
    await box.files.remove('tree', { recursive: true });
    expect(await box.files.exists('tree')).toBe(false);
  });

  it('downloads a tree as tar.gz and uploads it elsewhere (web and Node streams)', async () => {
    await box.files.write('proj/src/main.py', 'print("hi")\n');
    await box.files.write('proj/README', 'readme\n');
    const archive = await box.files.downloadArchive('proj');
    const bytes = new Uint8Array(await new Response(archive).arrayBuffer());
    expect(bytes.subarray(0, 2)).toEqual(new Uint8Array([0x1f, 0x8b]));
    await box.files.uploadArchive('/tmp/copy', bytes);
    expect(await box.files.readText('/tmp/copy/src/main.py')).toBe('print("hi")\n');
    await box.files.uploadArchive('/tmp/copy2', Readable.from([Buffer.from(bytes)]));
    expect(await box.files.readText('/tmp/copy2/README')).toBe('readme\n');
  });

  it('maps file errors to typed classes', async () => {
    const missing = await box.files.read('nope/missing.txt').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FileNotFoundError);
    expect(missing).toMatchObject({ code: 'FILE_NOT_FOUND', status: 404 });
    await expect(box.files.read('/tmp')).rejects.toBeInstanceOf(BadRequestError);
    await expect(box.files.list('nope/missing')).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it('git diff of a repository, as text and per file', async () => {
    const git = await box.exec('sh', [
      '-c',
      'mkdir -p repo && cd repo && git init -q && git config user.email a@b && git config user.name a && echo one > f && git add f && git commit -qm one && echo two > f',
    ]);
    expect(git.exitCode, git.stderr).toBe(0);
    expect(await box.gitDiff('repo')).toContain('+two');
    const files = await box.gitDiffFiles('repo');
    expect(files).toEqual([
      expect.objectContaining({ path: 'f', status: 'modified', additions: 1, deletions: 1 }),
    ]);
  });
});
