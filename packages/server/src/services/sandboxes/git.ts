import type { Runtime } from '@corral/runtime';
import { type Static, Type } from 'typebox';
import { apiError } from '../../errors.js';

/** One file of a diff (`GET /v1/sandboxes/{id}/git/diff?format=json`). */
export const DiffFileSchema = Type.Object({
  path: Type.String({
    description: 'After the change (for a deleted file, the path it had); relative to `path`.',
  }),
  old_path: Type.Union([Type.String(), Type.Null()], { description: 'Before the change; null when added.' }),
  status: Type.Union([
    Type.Literal('added'),
    Type.Literal('modified'),
    Type.Literal('deleted'),
    Type.Literal('renamed'),
  ]),
  additions: Type.Integer(),
  deletions: Type.Integer(),
  diff: Type.String({ description: "This file's part of the unified diff, headers included." }),
});
export type DiffFile = Static<typeof DiffFileSchema>;

/** The JSON form of a diff. */
export const DiffSchema = Type.Object({ files: Type.Array(DiffFileSchema) });

/**
 * Runs inside the sandbox as its user; $1 = directory. Tracked changes against HEAD (against
 * the empty tree before the first commit), then each untracked, not ignored file as added.
 * Paths are relative to $1. Exit 3: no such directory; 4: not in a git work tree.
 */
const DIFF_SCRIPT = `
cd -- "$1" 2>/dev/null || exit 3
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 4
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then base=HEAD
else base=$(git hash-object -t tree /dev/null) || exit 5; fi
git -c core.quotePath=false diff "$base" --relative --no-color --no-ext-diff --find-renames -- . || exit 5
git -c core.quotePath=false ls-files -z --others --exclude-standard -- . |
while IFS= read -r -d '' f; do
  git -c core.quotePath=false diff --no-index --no-color --no-ext-diff -- /dev/null "$f"
  [ $? -le 1 ] || exit 5
done`;

/** Longest a git diff may run. */
const DIFF_TIMEOUT_MS = 60_000;

/**
 * The unified diff (`git diff HEAD` plus untracked files as added) of the work tree at `dir`
 * in sandbox `id`, run as the sandbox user. Not a repository → 400 BAD_REQUEST; a missing
 * directory → 404 FILE_NOT_FOUND; a diff larger than `limitBytes` → 400 BAD_REQUEST.
 */
export async function gitDiff(
  runtime: Runtime,
  id: string,
  dir: string,
  limitBytes: number,
): Promise<string> {
  const proc = await runtime.exec(id, {
    command: '/bin/bash',
    args: ['-c', DIFF_SCRIPT, 'corral-git-diff', dir],
    env: { LC_ALL: 'C', GIT_PAGER: 'cat', PAGER: 'cat', GIT_OPTIONAL_LOCKS: '0' },
    cwd: '/',
    user: 'user',
    timeoutMs: DIFF_TIMEOUT_MS,
  });
  proc.stdin.end();
  const chunks: Buffer[] = [];
  let total = 0;
  let tooLarge = false;
  const stderr: Buffer[] = [];
  proc.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 16) stderr.push(chunk);
  });
  proc.stdout.on('data', (chunk: Buffer) => {
    total += chunk.length;
    if (total > limitBytes) {
      if (!tooLarge) proc.kill('SIGKILL');
      tooLarge = true;
      return;
    }
    chunks.push(chunk);
  });
  const status = await proc.wait();
  if (tooLarge) {
    throw apiError(
      'BAD_REQUEST',
      { path: dir, limit_bytes: limitBytes },
      `The diff is larger than ${limitBytes} bytes`,
    );
  }
  if (status.exitCode === 3) throw apiError('FILE_NOT_FOUND', { path: dir });
  if (status.exitCode === 4) {
    throw apiError('BAD_REQUEST', { path: dir }, `${dir} is not inside a git repository`);
  }
  if (status.exitCode !== 0) {
    const message = Buffer.concat(stderr).toString('utf8').split('\n')[0]?.slice(0, 300) ?? '';
    throw apiError('BAD_REQUEST', { path: dir, stderr: message }, `git diff failed: ${message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Undoes git's C-style quoting of a path (`"a\\303\\244b"` → `aäb`); unquoted paths pass through. */
export function unquotePath(text: string): string {
  if (!text.startsWith('"') || !text.endsWith('"') || text.length < 2) return text;
  const bytes: number[] = [];
  const body = text.slice(1, -1);
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, b: 8, f: 12, v: 11, a: 7, '"': 34, '\\': 92 };
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== '\\') {
      bytes.push(...Buffer.from(ch, 'utf8'));
      continue;
    }
    const next = body[i + 1] ?? '';
    const octal = /^[0-7]{3}/.exec(body.slice(i + 1, i + 4));
    if (octal) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(simple[next] ?? next.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `a/x` → `x`, `/dev/null` → null, with quoting undone (a `---`/`+++` or rename line's path). */
function headerPath(raw: string, prefix: 'a/' | 'b/' | ''): string | null {
  const text = unquotePath(raw.replace(/\t.*$/, ''));
  if (text === '/dev/null') return null;
  return prefix && text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

/** The two paths of a `diff --git a/X b/Y` line, when no other header names them (binary files). */
function gitLinePaths(rest: string): [string, string] {
  if (rest.startsWith('"')) {
    const tokens = rest.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    return [headerPath(tokens[0] ?? '', 'a/') ?? '', headerPath(tokens[1] ?? '', 'b/') ?? ''];
  }
  // Unquoted and unrenamed: `a/P b/P`, so the middle space splits it.
  const half = (rest.length - 1) / 2;
  return [rest.slice(2, half), rest.slice(half + 3)];
}

/** Splits a unified `git diff` into per-file entries with their status and line counts. */
export function parseUnifiedDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let current: { lines: string[]; file: DiffFile; inHunk: boolean } | null = null;
  const flush = () => {
    if (current) files.push({ ...current.file, diff: `${current.lines.join('\n')}\n` });
  };
  for (const line of lines) {
    if (line.startsWith('diff --git ')) {
      flush();
      const [oldPath, newPath] = gitLinePaths(line.slice('diff --git '.length));
      current = {
        lines: [line],
        inHunk: false,
        file: { path: newPath, old_path: oldPath, status: 'modified', additions: 0, deletions: 0, diff: '' },
      };
      continue;
    }
    if (!current) continue;
    current.lines.push(line);
    const file = current.file;
    if (line.startsWith('@@')) {
      current.inHunk = true;
    } else if (current.inHunk) {
      if (line.startsWith('+')) file.additions++;
      else if (line.startsWith('-')) file.deletions++;
    } else if (line.startsWith('new file mode')) {
      file.status = 'added';
    } else if (line.startsWith('deleted file mode')) {
      file.status = 'deleted';
    } else if (line.startsWith('rename from ')) {
      file.status = 'renamed';
      file.old_path = headerPath(line.slice('rename from '.length), '');
    } else if (line.startsWith('rename to ')) {
      file.path = headerPath(line.slice('rename to '.length), '') ?? file.path;
    } else if (line.startsWith('--- ')) {
      file.old_path = headerPath(line.slice(4), 'a/');
    } else if (line.startsWith('+++ ')) {
      file.path = headerPath(line.slice(4), 'b/') ?? file.old_path ?? file.path;
    }
  }
  flush();
  for (const file of files) {
    if (file.status === 'added') file.old_path = null;
    if (file.status === 'deleted' && file.old_path !== null) file.path = file.old_path;
  }
  return files;
}
