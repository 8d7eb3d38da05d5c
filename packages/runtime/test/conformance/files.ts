import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/interface.js';
import { describeFileEscapes } from '../shared/files-escapes.js';
import { patternStream, readAll, shellOk, waitFor } from '../shared/sandbox-shell.js';
import { buildArchive, ESCAPES } from '../shared/tar-fixtures.js';

const MiB = 1024 * 1024;

/**
 * The `files` section of the conformance suite: every driver's `runtime.files` against a running
 * sandbox (base template: coreutils, findutils, tar, gzip, bash, perl-base).
 */
export function describeFiles(getRuntime: () => Runtime, getSandboxId: () => string): void {
  describe('files', () => {
    const rt = () => getRuntime();
    const id = () => getSandboxId();
    const files = () => getRuntime().files;
    const sh = (script: string, user: 'user' | 'root' = 'user', args: string[] = []) =>
      shellOk(rt(), id(), script, { user, args });
    const text = async (path: string, range?: { start: number; end?: number }) =>
      (await readAll(await files().read(id(), path, range))).toString('utf8');
    const errorCode = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (err: { code?: string }) => err.code ?? String(err),
      );
    let dir: string;

    beforeAll(async () => {
      dir = `/home/user/files-${randomBytes(4).toString('hex')}`;
      await files().mkdir(id(), dir);
    });

    it('round-trips binary data and reports it in stat and list', async () => {
      const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(MiB)]);
      const written = await files().write(id(), `${dir}/bin/data.bin`, Readable.from([data]), {
        mode: 0o640,
      });
      expect(written).toBe(data.length);
      // Buffer.equals, not toEqual: a deep compare of a MiB is seconds.
      expect((await readAll(await files().read(id(), `${dir}/bin/data.bin`))).equals(data)).toBe(true);
      const info = await files().stat(id(), `${dir}/bin/data.bin`);
      expect(info).toMatchObject({
        name: 'data.bin',
        path: `${dir}/bin/data.bin`,
        type: 'file',
        size: data.length,
      });
      expect(info.mode).toBe(0o640);
      expect(Math.abs(Date.parse(info.mtime) - Date.now())).toBeLessThan(5 * 60_000);
      const listing = await files().list(id(), `${dir}/bin`);
      expect(listing.map((f) => [f.name, f.type, f.size])).toEqual([['data.bin', 'file', data.length]]);
      expect((await files().stat(id(), `${dir}/bin`)).type).toBe('directory');
    });

    it('streams a 50 MiB file both ways', async () => {
      const size = 50 * MiB;
      const hashIn = createHash('sha256');
      const source = patternStream(size, 7).pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            hashIn.update(chunk);
            done(null, chunk);
          },
        }),
      );
      expect(await files().write(id(), `${dir}/big.bin`, source)).toBe(size);
      const hashOut = createHash('sha256');
      let received = 0;
      for await (const chunk of await files().read(id(), `${dir}/big.bin`)) {
        hashOut.update(chunk as Buffer);
        received += (chunk as Buffer).length;
      }
      expect(received).toBe(size);
      const expected = hashIn.digest('hex');
      expect(hashOut.digest('hex')).toBe(expected);
      expect((await sh('sha256sum -- "$1"', 'user', [`${dir}/big.bin`])).split(' ')[0]).toBe(expected);
    });

    it("writes empty files, and keeps a file's mode when none is given", async () => {
      expect(await files().write(id(), `${dir}/modes/empty`, Readable.from([]))).toBe(0);
      expect(await files().stat(id(), `${dir}/modes/empty`)).toMatchObject({ size: 0, mode: 0o644 });
      for (const size of [10, 3 * MiB]) {
        const path = `${dir}/modes/script-${size}`;
        await files().write(id(), path, patternStream(size), { mode: 0o750 });
        await files().write(id(), path, patternStream(size, 3));
        expect(await files().stat(id(), path)).toMatchObject({ size, mode: 0o750 });
      }
    });

    it('reads byte ranges', async () => {
      await files().write(id(), `${dir}/range.txt`, Readable.from([Buffer.from('0123456789')]));
      expect(await text(`${dir}/range.txt`, { start: 0, end: 0 })).toBe('0');
      expect(await text(`${dir}/range.txt`, { start: 3, end: 6 })).toBe('3456');
      expect(await text(`${dir}/range.txt`, { start: 7 })).toBe('789');
      expect(await text(`${dir}/range.txt`, { start: 8, end: 100 })).toBe('89');
      expect(await text(`${dir}/range.txt`, { start: 50 })).toBe('');
      expect(await errorCode(files().read(id(), `${dir}/range.txt`, { start: 5, end: 4 }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await errorCode(files().read(id(), `${dir}/range.txt`, { start: -1 }))).toBe('INVALID_ARGUMENT');
      const big = await files().read(id(), `${dir}/big.bin`, { start: 10 * MiB, end: 20 * MiB - 1 });
      expect((await readAll(big)).length).toBe(10 * MiB);
    });

    it('stops the reading process when the caller drops the stream', async () => {
      const stream = await files().read(id(), `${dir}/big.bin`);
      await new Promise((resolve) => stream.once('readable', resolve));
      stream.destroy();
      const readers = () => sh('find /proc/[0-9]*/fd -lname "*/big.bin" 2>/dev/null; true');
      await waitFor('the reader to exit', async () => ((await readers()) === '' ? true : undefined));
    });

    it('keeps unicode, newline and odd names exact', async () => {
      const names = [
        'ünï cødé 🐄.txt',
        'line\nbreak',
        'tab\there',
        ' leading space',
        '-dash',
        'quote\'"',
        '$(reboot)',
      ];
      for (const name of names) {
        await files().write(id(), `${dir}/names/${name}`, Readable.from([Buffer.from(name)]));
      }
      const listing = await files().list(id(), `${dir}/names`);
      expect(listing.map((f) => f.name)).toEqual([...names].sort());
      for (const entry of listing) {
        expect(entry.path).toBe(`${dir}/names/${entry.name}`);
        expect(await text(entry.path)).toBe(entry.name);
      }
    });

    it('reports symlinks as symlinks, and lists a directory through one', async () => {
      await sh(
        'mkdir -p "$1/links/real" && ln -s real "$1/links/alias" && ln -s /nowhere "$1/links/dangling"',
        'user',
        [dir],
      );
      expect(await files().stat(id(), `${dir}/links/alias`)).toMatchObject({ type: 'symlink', size: 4 });
      const listing = await files().list(id(), `${dir}/links`);
      expect(listing.map((f) => [f.name, f.type]).sort()).toEqual([
        ['alias', 'symlink'],
        ['dangling', 'symlink'],
        ['real', 'directory'],
      ]);
      expect(await files().list(id(), `${dir}/links/alias`)).toEqual([]);
      expect(await errorCode(files().list(id(), `${dir}/links/dangling`))).toBe('FILE_NOT_FOUND');
    });

    it('lists a directory whose entries come and go', async () => {
      const churn = `${dir}/churn`;
      await files().mkdir(id(), churn);
      const churner = await rt().exec(id(), {
        command: '/bin/bash',
        args: [
          '-c',
          'cd "$1"; end=$((SECONDS + 30)); while [ $SECONDS -lt $end ]; do touch a b c d; rm -f a b c d; done',
          'churn',
          churn,
        ],
        user: 'user',
      });
      churner.stdin.end();
      churner.stdout.resume();
      churner.stderr.resume();
      try {
        for (let i = 0; i < 30; i++) {
          const names = (await files().list(id(), churn)).map((f) => f.name);
          expect(names.every((name) => ['a', 'b', 'c', 'd'].includes(name))).toBe(true);
        }
      } finally {
        churner.kill('SIGKILL');
        await churner.wait();
      }
    });

    it('takes relative paths from the home directory', async () => {
      const relative = `${dir.slice('/home/user/'.length)}/relative.txt`;
      await files().write(id(), relative, Readable.from([Buffer.from('rel')]));
      expect(await text(`${dir}/relative.txt`)).toBe('rel');
      expect((await files().stat(id(), relative)).path).toBe(`${dir}/relative.txt`);
    });

    it('maps errors to codes', async () => {
      await files().write(id(), `${dir}/err/file`, Readable.from([Buffer.from('x')]));
      expect(await errorCode(files().read(id(), `${dir}/err/missing`))).toBe('FILE_NOT_FOUND');
      expect(await errorCode(files().stat(id(), `${dir}/err/missing`))).toBe('FILE_NOT_FOUND');
      expect(await errorCode(files().list(id(), `${dir}/err/missing`))).toBe('FILE_NOT_FOUND');
      expect(await errorCode(files().read(id(), `${dir}/err`))).toBe('IS_A_DIRECTORY');
      expect(await errorCode(files().list(id(), `${dir}/err/file`))).toBe('NOT_A_DIRECTORY');
      expect(await errorCode(files().stat(id(), `${dir}/err/file/below`))).toBe('NOT_A_DIRECTORY');
      expect(await errorCode(files().write(id(), `${dir}/err`, Readable.from([Buffer.from('x')])))).toBe(
        'IS_A_DIRECTORY',
      );
      expect(
        await errorCode(files().write(id(), `${dir}/err/file/x`, Readable.from([Buffer.from('x')]))),
      ).toBe('NOT_A_DIRECTORY');
      // Large writes stream through a different path: same codes.
      const big = () => patternStream(3 * MiB);
      expect(await errorCode(files().write(id(), `${dir}/err`, big()))).toBe('IS_A_DIRECTORY');
      expect(await errorCode(files().write(id(), `${dir}/err/file/x`, big()))).toBe('NOT_A_DIRECTORY');
      expect(await errorCode(files().write(id(), '/root/big', big()))).toBe('PERMISSION_DENIED');
      expect(await errorCode(files().mkdir(id(), `${dir}/err/file`))).toBe('FILE_EXISTS');
      expect(await errorCode(files().tarOut(id(), `${dir}/err/missing`))).toBe('FILE_NOT_FOUND');
      expect(await errorCode(files().tarOut(id(), `${dir}/err/file`))).toBe('NOT_A_DIRECTORY');
      expect(
        await errorCode(files().tarIn(id(), `${dir}/err/file`, Readable.from([buildArchive('plain')]))),
      ).toBe('NOT_A_DIRECTORY');
      expect(await errorCode(files().write(id(), `${dir}/err/x`, Readable.from([]), { mode: 0o10000 }))).toBe(
        'INVALID_ARGUMENT',
      );
      expect(await errorCode(files().stat(id(), ''))).toBe('INVALID_ARGUMENT');
      expect(await errorCode(files().stat(id(), 'a\0b'))).toBe('INVALID_ARGUMENT');
      expect(await errorCode(files().list(id(), '/root'))).toBe('PERMISSION_DENIED');
      expect(await errorCode(files().read(id(), '/root/.profile'))).toBe('PERMISSION_DENIED');
      expect(await errorCode(files().write(id(), '/root/x', Readable.from([Buffer.from('x')])))).toBe(
        'PERMISSION_DENIED',
      );
      expect(await errorCode(files().write(id(), '/etc/corral-x', Readable.from([Buffer.from('x')])))).toBe(
        'PERMISSION_DENIED',
      );
    });

    it('replaces files atomically: a reader never sees a partial file', async () => {
      const path = `${dir}/atomic/file`;
      const small = Buffer.alloc(2 * MiB, 'a');
      const large = Buffer.alloc(8 * MiB, 'b');
      await files().write(id(), path, Readable.from([small]));
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 6; i++) {
          await files().write(id(), path, Readable.from([i % 2 === 0 ? large : small]));
        }
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const content = await readAll(await files().read(id(), path));
        const whole = content.equals(small) || content.equals(large);
        expect(whole, `read ${content.length} bytes`).toBe(true);
        reads++;
      }
      await writer;
      expect(reads).toBeGreaterThan(0);
      expect((await files().list(id(), `${dir}/atomic`)).map((f) => f.name)).toEqual(['file']);
    });

    it('leaves the old file and no temp file when the data stream fails', async () => {
      const path = `${dir}/abort/file`;
      await files().write(id(), path, Readable.from([Buffer.from('old')]));
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(MiB, 'n'));
          setTimeout(() => this.destroy(new Error('client went away')), 20);
        },
      });
      await expect(files().write(id(), path, failing)).rejects.toThrow(/client went away/);
      expect(await text(path)).toBe('old');
      expect((await files().list(id(), `${dir}/abort`)).map((f) => f.name)).toEqual(['file']);
    });

    it('makes directories, moves and removes', async () => {
      const base = `${dir}/ops`;
      await files().mkdir(id(), `${base}/a/b/c`);
      await files().mkdir(id(), `${base}/a/b/c`);
      await files().write(id(), `${base}/a/b/c/f.txt`, Readable.from([Buffer.from('f')]));
      await files().move(id(), `${base}/a/b/c/f.txt`, `${base}/a/g.txt`);
      expect(await text(`${base}/a/g.txt`)).toBe('f');
      expect(await errorCode(files().stat(id(), `${base}/a/b/c/f.txt`))).toBe('FILE_NOT_FOUND');
      await files().move(id(), `${base}/a/b`, `${base}/moved`);
      expect((await files().stat(id(), `${base}/moved/c`)).type).toBe('directory');
      expect(await errorCode(files().move(id(), `${base}/a/g.txt`, `${base}/nope/g.txt`))).toBe(
        'FILE_NOT_FOUND',
      );
      expect(await errorCode(files().move(id(), `${base}/missing`, `${base}/x`))).toBe('FILE_NOT_FOUND');
      await files().write(id(), `${base}/full/x`, Readable.from([Buffer.from('x')]));
      expect(await errorCode(files().remove(id(), `${base}/full`))).toBe('IS_A_DIRECTORY');
      await files().remove(id(), `${base}/full`, { recursive: true });
      await files().remove(id(), `${base}/moved/c`);
      await files().remove(id(), `${base}/a/g.txt`);
      expect(await errorCode(files().remove(id(), `${base}/a/g.txt`))).toBe('FILE_NOT_FOUND');
      expect((await files().list(id(), base)).map((f) => f.name).sort()).toEqual(['a', 'moved']);
    });

    for (const gzip of [false, true]) {
      it(`round-trips a tree through tarOut and tarIn (gzip ${gzip})`, async () => {
        const src = `${dir}/tar-src-${gzip}`;
        const dst = `${dir}/tar-dst-${gzip}`;
        await sh(
          `mkdir -p "$1/sub/deeper" && cd "$1" && printf 'one' > one.txt && head -c 300000 /dev/urandom > sub/r.bin &&
           printf 'x' > 'sub/ünï 🐄' && chmod 751 sub/deeper && ln -s ../one.txt sub/link`,
          'user',
          [src],
        );
        const archive = await readAll(await files().tarOut(id(), src, { gzip }));
        expect(archive[0] === 0x1f && archive[1] === 0x8b).toBe(gzip);
        await files().tarIn(id(), dst, Readable.from([archive]));
        const manifest = `cd "$1" && find . -type d -printf '%p d %m\\n' -o -printf '%p %y %m %s %l\\n' | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort`;
        expect(await sh(manifest, 'user', [dst])).toBe(await sh(manifest, 'user', [src]));
        expect((await files().list(id(), dst)).some((f) => f.name.startsWith('.corral-'))).toBe(false);
      });
    }

    it('unpacks members written through a symlink that stays inside', async () => {
      await files().tarIn(id(), `${dir}/inner`, Readable.from([buildArchive('inner-symlink')]));
      expect(await text(`${dir}/inner/sub/through-link.txt`)).toBe('payload\n');
    });

    it('refuses an archive that would go through a symlink already on disk leading out of the target', async () => {
      const base = `${dir}/on-disk`;
      await sh(
        'mkdir -p "$1/out" "$1/target/real" && ln -s "$1/out" "$1/target/d" && ln -s real "$1/target/ok"',
        'user',
        [base],
      );
      const archive = buildArchive('nested-file');
      const err = await files()
        .tarIn(id(), `${base}/target`, Readable.from([archive]))
        .then(
          () => null,
          (e: { code?: string; details?: { entry?: string } }) => e,
        );
      expect(err?.code).toBe('INVALID_ARGUMENT');
      expect(err?.details?.entry).toBe('d');
      expect(await files().list(id(), `${base}/out`)).toEqual([]);
      expect((await files().list(id(), `${base}/target`)).map((f) => f.name).sort()).toEqual([
        'd',
        'ok',
        'real',
      ]);
      // A symlink that stays inside the target is fine.
      await sh('rm "$1/target/d" && ln -s real "$1/target/d"', 'user', [base]);
      await files().tarIn(id(), `${base}/target`, Readable.from([archive]));
      expect(await text(`${base}/target/real/x.txt`)).toBe('nested\n');
    });

    for (const [kind] of ESCAPES) {
      it(`refuses the tar-slip archive '${kind}' and writes nothing`, async () => {
        const target = `${dir}/slip-${kind}/target`;
        await files().mkdir(id(), target);
        for (const gzip of [false, true]) {
          const err = await files()
            .tarIn(id(), target, Readable.from([buildArchive(kind, { gzip })]))
            .then(
              () => null,
              (e: { code?: string; details?: { entry?: string } }) => e,
            );
          expect(err?.code).toBe('INVALID_ARGUMENT');
          expect(err?.details?.entry).toBeTruthy();
        }
        expect(await files().list(id(), target)).toEqual([]);
        expect((await files().list(id(), `${dir}/slip-${kind}`)).map((f) => f.name)).toEqual(['target']);
        const anywhere = await sh(
          'find / -xdev -name "corral-escaped.txt" -o -name escaped.txt 2>/dev/null | head -5',
          'root',
        );
        expect(anywhere).toBe('');
      });
    }

    describeFileEscapes({ getRuntime, getSandboxId, dir: () => dir });
  });
}
