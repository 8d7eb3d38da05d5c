import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Archives built with the host's GNU tar: good ones and tar-slip attempts. */
export type FixtureKind =
  | 'plain'
  | 'gnu-long-names'
  | 'pax-long-names'
  | 'ustar-prefix'
  | 'inner-symlink'
  | 'nested-file'
  | 'parent-traversal'
  | 'absolute'
  | 'symlink-absolute-escape'
  | 'symlink-relative-escape'
  | 'symlink-chain-escape'
  | 'hardlink-escape'
  | 'pax-traversal';

export const LONG_NAME = `${'long-directory-name-'.repeat(4)}/${'very-long-file-name-'.repeat(4)}.txt`;

/** Build one fixture archive (optionally gzip) and return its bytes. */
export function buildArchive(kind: FixtureKind, options: { gzip?: boolean } = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'corral-tar-fixture-'));
  const tar = (...args: string[]) =>
    execFileSync('tar', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    writeFileSync(join(dir, 'x'), 'payload\n');
    mkdirSync(join(dir, 'tree/sub'), { recursive: true });
    writeFileSync(join(dir, 'tree/a.txt'), 'a\n');
    writeFileSync(join(dir, 'tree/sub/b.txt'), 'b\n');
    const out = join(dir, 'out.tar');
    switch (kind) {
      case 'plain':
        tar('-cf', out, '-C', 'tree', '.');
        break;
      case 'gnu-long-names':
      case 'pax-long-names':
      case 'ustar-prefix': {
        mkdirSync(join(dir, 'long', LONG_NAME, '..'), { recursive: true });
        writeFileSync(join(dir, 'long', LONG_NAME), 'long\n');
        const format = { 'gnu-long-names': 'gnu', 'pax-long-names': 'posix', 'ustar-prefix': 'ustar' }[kind];
        tar('-cf', out, `--format=${format}`, '-C', 'long', '.');
        break;
      }
      case 'inner-symlink':
        // A relative symlink that stays inside, and a member written through it.
        symlinkSync('sub', join(dir, 'tree/alias'));
        tar('-cf', out, '-C', 'tree', '.');
        tar('-rf', out, '--transform', 's,^x$,./alias/through-link.txt,', 'x');
        break;
      case 'nested-file':
        // Only `d/x.txt`, no entry for `d`: tar walks through whatever `d` is on disk.
        mkdirSync(join(dir, 'd'));
        writeFileSync(join(dir, 'd/x.txt'), 'nested\n');
        tar('-cf', out, 'd/x.txt');
        break;
      case 'parent-traversal':
        tar('-cPf', out, '--transform', 's,^x$,../../escaped.txt,', 'x');
        break;
      case 'absolute':
        tar('-cPf', out, '--transform', 's,^x$,/tmp/corral-escaped.txt,', 'x');
        break;
      case 'symlink-absolute-escape':
        symlinkSync('/etc', join(dir, 'link'));
        tar('-cf', out, 'link');
        tar('-rf', out, '--transform', 's,^x$,link/corral-escaped.txt,', 'x');
        break;
      case 'symlink-relative-escape':
        mkdirSync(join(dir, 'd'));
        symlinkSync('../../../..', join(dir, 'd/up'));
        tar('-cf', out, 'd');
        tar('-rf', out, '--transform', 's,^x$,d/up/tmp/corral-escaped.txt,', 'x');
        break;
      case 'symlink-chain-escape':
        // a -> b (inside), b -> .. (outside): only the chain escapes.
        symlinkSync('b', join(dir, 'a'));
        symlinkSync('..', join(dir, 'b'));
        tar('-cf', out, 'a', 'b');
        tar('-rf', out, '--transform', 's,^x$,a/corral-escaped.txt,', 'x');
        break;
      case 'hardlink-escape':
        writeFileSync(join(dir, 'y'), '');
        execFileSync('ln', ['-f', 'x', 'y'], { cwd: dir });
        tar('-cPf', out, '--transform', 'flags=h;s,^x$,../../etc/passwd,', 'x', 'y');
        break;
      case 'pax-traversal':
        mkdirSync(join(dir, 'long', LONG_NAME, '..'), { recursive: true });
        writeFileSync(join(dir, 'long', LONG_NAME), 'long\n');
        tar('-cPf', out, '--format=posix', '-C', 'long', '--transform', 's,^,../,', LONG_NAME);
        break;
    }
    if (options.gzip) execFileSync('gzip', ['-n', out], { cwd: dir });
    return execFileSync('cat', [options.gzip ? `${out}.gz` : out], { maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The escaping kinds, each with the rejection reason TarGuard must give. */
export const ESCAPES: Array<[FixtureKind, string]> = [
  ['parent-traversal', 'parent-traversal'],
  ['absolute', 'absolute-path'],
  ['symlink-absolute-escape', 'symlink-escape'],
  ['symlink-relative-escape', 'symlink-escape'],
  ['symlink-chain-escape', 'symlink-escape'],
  ['hardlink-escape', 'hardlink-escape'],
  ['pax-traversal', 'parent-traversal'],
];
