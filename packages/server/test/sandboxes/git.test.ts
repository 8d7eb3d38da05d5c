import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/services/keys.js';
import { parseUnifiedDiff, unquotePath } from '../../src/services/sandboxes/git.js';
import { describeStores, expectError, type StoreContext } from '../support/app.js';

describe('parseUnifiedDiff', () => {
  it('splits files and counts lines by status', () => {
    const text = [
      'diff --git a/src/app.ts b/src/app.ts',
      'index 1111111..2222222 100644',
      '--- a/src/app.ts',
      '+++ b/src/app.ts',
      '@@ -1,3 +1,3 @@',
      ' keep',
      '-old line',
      '--- a line that starts with dashes',
      '+new line',
      '+++ a line that starts with pluses',
      '\\ No newline at end of file',
      'diff --git a/gone.txt b/gone.txt',
      'deleted file mode 100644',
      'index 3333333..0000000',
      '--- a/gone.txt',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-bye',
      'diff --git a/new file.txt b/new file.txt',
      'new file mode 100644',
      'index 0000000..4444444',
      '--- /dev/null',
      '+++ b/new file.txt',
      '@@ -0,0 +1,2 @@',
      '+a',
      '+b',
      'diff --git a/old/name.md b/new/name.md',
      'similarity index 90%',
      'rename from old/name.md',
      'rename to new/name.md',
      'index 5555555..6666666 100644',
      '--- a/old/name.md',
      '+++ b/new/name.md',
      '@@ -1 +1 @@',
      '-x',
      '+y',
      'diff --git a/logo.png b/logo.png',
      'new file mode 100644',
      'index 0000000..7777777',
      'Binary files /dev/null and b/logo.png differ',
      'diff --git "a/t\\303\\244b\\tx" "b/t\\303\\244b\\tx"',
      'new file mode 100644',
      '--- /dev/null',
      '+++ "b/t\\303\\244b\\tx"',
      '@@ -0,0 +1 @@',
      '+z',
      '',
    ].join('\n');
    const files = parseUnifiedDiff(text);
    expect(files.map(({ diff: _diff, ...rest }) => rest)).toEqual([
      { path: 'src/app.ts', old_path: 'src/app.ts', status: 'modified', additions: 2, deletions: 2 },
      { path: 'gone.txt', old_path: 'gone.txt', status: 'deleted', additions: 0, deletions: 1 },
      { path: 'new file.txt', old_path: null, status: 'added', additions: 2, deletions: 0 },
      { path: 'new/name.md', old_path: 'old/name.md', status: 'renamed', additions: 1, deletions: 1 },
      { path: 'logo.png', old_path: null, status: 'added', additions: 0, deletions: 0 },
      { path: 'täb\tx', old_path: null, status: 'added', additions: 1, deletions: 0 },
    ]);
    expect(files[0]!.diff.startsWith('diff --git a/src/app.ts b/src/app.ts\n')).toBe(true);
    expect(files[0]!.diff.endsWith('\\ No newline at end of file\n')).toBe(true);
    expect(files.map((f) => f.diff).join('')).toBe(text);
  });

  it('answers no files for an empty diff', () => {
    expect(parseUnifiedDiff('')).toEqual([]);
  });

  it('undoes git path quoting', () => {
    expect(unquotePath('plain/path')).toBe('plain/path');
    expect(unquotePath('"a\\"b\\\\c\\n"')).toBe('a"b\\c\n');
    expect(unquotePath('"\\360\\237\\230\\200"')).toBe('😀');
  });
});

/** Runs `script` in the sandbox as its user; resolves with stdout, fails on a non-zero exit. */
async function sh(ctx: StoreContext, id: string, script: string): Promise<string> {
  const proc = await ctx.engine.runtime.exec(id, { command: '/bin/bash', args: ['-ec', script] });
  proc.stdin.end();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => out.push(c));
  proc.stderr.on('data', (c: Buffer) => err.push(c));
  const status = await proc.wait();
  expect(status.exitCode, `${script}\n${Buffer.concat(err).toString()}`).toBe(0);
  return Buffer.concat(out).toString('utf8');
}

describeStores(
  'sandboxes: git diff over HTTP',
  (ctx) => {
    let id: string;
    let owner: { authorization: string };
    let caller: Awaited<ReturnType<StoreContext['createCaller']>>;
    const diff = (query: string, headers = owner) =>
      ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/git/diff${query}`, headers });

    beforeAll(async () => {
      caller = await ctx.createCaller();
      owner = caller.headers;
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner,
        payload: {},
      });
      expect(created.statusCode, created.body).toBe(201);
      id = created.json().id;
      await sh(
        ctx,
        id,
        `mkdir -p ~/repo/sub && cd ~/repo
        git init -q -b main
        git config user.email t@example.test && git config user.name T
        printf 'one\\ntwo\\nthree\\n' > keep.txt
        printf 'bye\\n' > gone.txt
        printf 'moved\\ncontent\\nhere\\n' > old.md
        printf 'x\\n' > sub/inner.txt
        printf 'ignored.log\\n' > .gitignore
        git add -A && git commit -q -m init
        printf 'one\\n2\\nthree\\nfour\\n' > keep.txt
        rm gone.txt
        git mv old.md new.md
        printf 'fresh\\n' > untracked.txt
        printf 'noise\\n' > ignored.log
        printf 'y\\n' >> sub/inner.txt`,
      );
    });

    it('answers the text diff, tracked changes and untracked files', async () => {
      const res = await diff('?path=repo');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toContain('diff --git a/keep.txt b/keep.txt');
      expect(res.body).toContain('-two\n+2\n');
      expect(res.body).toContain('rename from old.md');
      expect(res.body).toContain('+++ b/untracked.txt');
      expect(res.body).not.toContain('ignored.log');
    });

    it('answers one JSON entry per file', async () => {
      const res = await diff('?path=/home/user/repo&format=json');
      expect(res.statusCode, res.body).toBe(200);
      const files = res.json().files as Array<{ path: string; diff: string }>;
      const byPath = Object.fromEntries(
        files.map(({ diff: text, ...rest }) => [rest.path, { ...rest, text }]),
      );
      expect(Object.keys(byPath).sort()).toEqual([
        'gone.txt',
        'keep.txt',
        'new.md',
        'sub/inner.txt',
        'untracked.txt',
      ]);
      expect(byPath['keep.txt']).toMatchObject({
        status: 'modified',
        additions: 2,
        deletions: 1,
        old_path: 'keep.txt',
      });
      expect(byPath['gone.txt']).toMatchObject({ status: 'deleted', additions: 0, deletions: 1 });
      expect(byPath['new.md']).toMatchObject({
        status: 'renamed',
        old_path: 'old.md',
        additions: 0,
        deletions: 0,
      });
      expect(byPath['untracked.txt']).toMatchObject({ status: 'added', old_path: null, additions: 1 });
      expect(byPath['untracked.txt']!.text).toContain('+fresh');
    });

    it('limits the diff to a subdirectory, with paths relative to it', async () => {
      const res = await diff('?path=repo/sub&format=json');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().files.map((f: { path: string }) => f.path)).toEqual(['inner.txt']);
    });

    it('diffs a repository without commits against the empty tree', async () => {
      await sh(ctx, id, 'mkdir -p ~/fresh && cd ~/fresh && git init -q && printf "a\\n" > a.txt');
      const res = await diff('?path=fresh&format=json');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().files).toEqual([
        expect.objectContaining({ path: 'a.txt', status: 'added', additions: 1 }),
      ]);
    });

    it('answers an empty diff for a clean tree', async () => {
      await sh(
        ctx,
        id,
        'mkdir -p ~/clean && cd ~/clean && git init -q && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m e',
      );
      const text = await diff('?path=clean');
      expect(text.statusCode).toBe(200);
      expect(text.body).toBe('');
      expect((await diff('?path=clean&format=json')).json()).toEqual({ files: [] });
    });

    it('answers 400 outside a repository, 404 for a missing directory, and checks access', async () => {
      await sh(ctx, id, 'mkdir -p /tmp/plain');
      const plain = expectError(await diff('?path=/tmp/plain'), 'BAD_REQUEST');
      expect(plain.error.message).toContain('not inside a git repository');
      expectError(await diff('?path=/no/such/dir'), 'FILE_NOT_FOUND');
      expectError(await diff('?format=yaml'), 'VALIDATION_ERROR');
      const stranger = await ctx.createCaller();
      expectError(await diff('?path=repo', stranger.headers), 'SANDBOX_NOT_FOUND');
      const noScope = await createApiKey(
        { store: ctx.store, audit: ctx.app.audit },
        {
          userId: caller.userId,
          workspaceId: caller.workspaceId,
          name: 'exec only',
          scopes: ['sandbox:exec'],
        },
      );
      expectError(await diff('?path=repo', { authorization: `Bearer ${noScope.key}` }), 'FORBIDDEN');
    });
  },
  { runtime: true },
);
