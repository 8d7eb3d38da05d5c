import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/interface.js';
import { readAll, shellOk } from './sandbox-shell.js';

export interface FileEscapesContext {
  getRuntime: () => Runtime;
  getSandboxId: () => string;
  /** A directory of the sandbox user's to work in. */
  dir: () => string;
}

/**
 * Part of the `files` conformance section: host-only files planted for the test can never be
 * read through `runtime.files`, whatever `..`, absolute or relative symlink, or symlink swapped
 * in mid-operation the sandbox holds.
 */
export function describeFileEscapes(ctx: FileEscapesContext): void {
  const rt = () => ctx.getRuntime();
  const id = () => ctx.getSandboxId();
  const files = () => ctx.getRuntime().files;
  const sh = (script: string, user: 'user' | 'root' = 'user', args: string[] = []) =>
    shellOk(rt(), id(), script, { user, args });
  const text = async (path: string) => (await readAll(await files().read(id(), path))).toString('utf8');
  const errorCode = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (err: { code?: string }) => err.code ?? String(err),
    );

  describe('never reaches a host file', () => {
    const tag = randomBytes(6).toString('hex');
    const hostRootSecret = `/root/corral-host-secret-${tag}`;
    const hostTmpDir = `/tmp/corral-host-${tag}`;
    const hostContent = `HOST-ONLY-${tag}`;

    beforeAll(() => {
      writeFileSync(hostRootSecret, hostContent, { mode: 0o644 });
      mkdirSync(hostTmpDir, { mode: 0o755 });
      writeFileSync(`${hostTmpDir}/secret`, hostContent, { mode: 0o644 });
    });
    afterAll(() => {
      rmSync(hostRootSecret, { force: true });
      rmSync(hostTmpDir, { recursive: true, force: true });
    });

    /** Every way of reading `path` must not yield the host's content. */
    async function expectNoHostContent(path: string) {
      const content = await text(path).catch((err: { code?: string }) => `error:${err.code}`);
      expect(content).not.toContain(hostContent);
      return content;
    }

    it('through .., absolute and relative symlinks', async () => {
      const base = `${ctx.dir()}/escape`;
      await sh(
        `mkdir -p "$1" && cd "$1" && ln -s /etc/shadow shadow && ln -s ../../../../../../etc up &&
         ln -s "$2" abs-secret && ln -s "../../../../../..$2" rel-secret && ln -s "$3" tmpdir`,
        'user',
        [base, hostRootSecret, hostTmpDir],
      );
      for (const path of [
        `${base}/abs-secret`,
        `${base}/rel-secret`,
        `${base}/tmpdir/secret`,
        `/../../../..${hostRootSecret}`,
        `../../../../../../..${hostTmpDir}/secret`,
        hostRootSecret,
        `${hostTmpDir}/secret`,
      ]) {
        expect(await expectNoHostContent(path)).toMatch(/^error:(FILE_NOT_FOUND|PERMISSION_DENIED)$/);
      }
      // Symlinks resolve to the sandbox's own files.
      const sandboxPasswd = await sh('cat /etc/passwd');
      expect(await text(`${base}/up/passwd`)).toBe(sandboxPasswd);
      expect(await errorCode(files().read(id(), `${base}/shadow`))).toBe('PERMISSION_DENIED');
      // A sandbox file at the same path as the host's is the one that is read.
      await files().write(id(), `${hostTmpDir}/secret`, Readable.from([Buffer.from('SANDBOX')]));
      expect(await text(`${base}/tmpdir/secret`)).toBe('SANDBOX');
      expect((await files().list(id(), `${base}/tmpdir`)).map((f) => f.name)).toEqual(['secret']);
      expect(await errorCode(files().list(id(), `${base}/up/../root`))).toBe('FILE_NOT_FOUND');
    });

    it('through a symlink swapped in during the operations', async () => {
      const base = `${ctx.dir()}/swap`;
      await sh(`mkdir -p "$1/real" && printf REAL > "$1/real/secret" && ln -s real "$1/link"`, 'user', [
        base,
      ]);
      const swapper = await rt().exec(id(), {
        command: '/bin/bash',
        args: [
          '-c',
          'cd "$1"; end=$((SECONDS + 60)); while [ $SECONDS -lt $end ]; do ln -sfn "$2" link.new && mv -T link.new link; ln -sfn real link.new && mv -T link.new link; done',
          'swapper',
          base,
          hostTmpDir,
        ],
        user: 'user',
      });
      swapper.stdin.end();
      swapper.stdout.resume();
      swapper.stderr.resume();
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 40; i++) {
          seen.add(await expectNoHostContent(`${base}/link/secret`));
          const listing = await files()
            .list(id(), `${base}/link`)
            .catch(() => []);
          for (const entry of listing) seen.add(await expectNoHostContent(entry.path));
          await files()
            .write(id(), `${base}/link/written`, Readable.from([Buffer.from('w')]))
            .catch(() => {});
        }
        for (const value of seen) expect(value).toMatch(/^(REAL|SANDBOX|w|error:[A-Z_]+)$/);
      } finally {
        swapper.kill('SIGKILL');
        await swapper.wait();
      }
    });

    it('leaves the host untouched', async () => {
      expect(readFileSync(`${hostTmpDir}/secret`, 'utf8')).toBe(hostContent);
      expect(readdirSync(hostTmpDir)).toEqual(['secret']);
    });
  });
}
