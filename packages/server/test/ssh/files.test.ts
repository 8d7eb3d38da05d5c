import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';
import { type SshFixture, sshFixture, TOKEN_ONLY } from './helpers.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describeStores(
  'ssh gateway: scp and sftp (SFTP subsystem)',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let token: string;
    let ssh: SshFixture;
    const scp = (args: string[]) =>
      ssh.run('scp', ['-P', String(ssh.gateway.port), ...ssh.common, ...TOKEN_ONLY, ...args]);
    const sftp = (batch: string) => {
      const file = join(ssh.dir, `batch-${randomBytes(4).toString('hex')}`);
      writeFileSync(file, batch);
      return ssh.run('sftp', [
        '-P',
        String(ssh.gateway.port),
        ...ssh.common,
        ...TOKEN_ONLY,
        '-b',
        file,
        `${token}@127.0.0.1`,
      ]);
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      ssh = await sshFixture(ctx);
      token = (
        await ctx.app.sandboxTokens.mint({
          sandboxId: id,
          workspaceId: owner.workspaceId,
          kind: 'ssh',
          createdBy: owner.userId,
        })
      ).token;
    });
    afterAll(async () => {
      await ssh?.close();
    });

    it('copies a few MiB in and out with scp, byte for byte, owned by the sandbox user', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 12_345);
      const local = join(ssh.dir, 'upload.bin');
      writeFileSync(local, data);
      const up = await scp([local, `${token}@127.0.0.1:/tmp/upload.bin`]);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      const inside = await ssh.ssh(token, ['sha256sum /tmp/upload.bin; stat -c %U /tmp/upload.bin']);
      expect(inside.stdout).toBe(`${sha256(data)}  /tmp/upload.bin\nuser\n`);

      // A relative path is taken from the user's home; download it back.
      const up2 = await scp([local, `${token}@127.0.0.1:copy.bin`]);
      expect(up2.code).toBe(0);
      const back = join(ssh.dir, 'download.bin');
      const down = await scp([`${token}@127.0.0.1:copy.bin`, back]);
      expect(down.stderr).toBe('');
      expect(down.code).toBe(0);
      expect(sha256(readFileSync(back))).toBe(sha256(data));
      const stat = await ctx.app.sandboxes.runtime.files.stat(id, '/home/user/copy.bin');
      expect(stat.size).toBe(data.length);

      // Over an existing, larger file: replaced, not merged.
      writeFileSync(local, 'short\n');
      expect((await scp([local, `${token}@127.0.0.1:copy.bin`])).code).toBe(0);
      const again = await ssh.ssh(token, ['cat copy.bin']);
      expect(again.stdout).toBe('short\n');
    });

    it('scp of a missing remote file fails with the reason, and writes nothing locally', async () => {
      const ran = await scp([`${token}@127.0.0.1:/tmp/no-such-file`, join(ssh.dir, 'nothing')]);
      expect(ran.code).not.toBe(0);
      expect(ran.stderr).toMatch(/No such file/i);
      expect(existsSync(join(ssh.dir, 'nothing'))).toBe(false);
    });

    it('runs an sftp batch: mkdir, put, ls, get, rename, rm, rmdir', async () => {
      const local = join(ssh.dir, 'note.txt');
      writeFileSync(local, 'hello sftp\n');
      const ran = await sftp(
        [
          'mkdir work',
          `put ${local} work/note.txt`,
          'ls -l work',
          'rename work/note.txt work/renamed.txt',
          'ls work',
          `get work/renamed.txt ${join(ssh.dir, 'got.txt')}`,
          'pwd',
        ].join('\n'),
      );
      expect(ran.stderr).toBe('');
      expect(ran.code).toBe(0);
      expect(ran.stdout).toMatch(/-rw-r--r-- .* 11 .* note\.txt/);
      expect(ran.stdout).toMatch(/work\/renamed\.txt/);
      expect(ran.stdout).toMatch(/Remote working directory: \/home\/user/);
      expect(readFileSync(join(ssh.dir, 'got.txt'), 'utf8')).toBe('hello sftp\n');
      const inside = await ctx.app.sandboxes.runtime.files.read(id, '/home/user/work/renamed.txt');
      expect(await text(inside)).toBe('hello sftp\n');

      const cleanup = await sftp(['rm work/renamed.txt', 'rmdir work', 'ls'].join('\n'));
      expect(cleanup.code).toBe(0);
      await expect(ctx.app.sandboxes.runtime.files.stat(id, '/home/user/work')).rejects.toMatchObject({
        code: 'FILE_NOT_FOUND',
      });
    });

    it('answers sftp errors as errors: rm of a missing file, rmdir of a file, get of a directory', async () => {
      for (const command of ['rm /tmp/missing-file', 'rmdir /tmp/upload.bin', 'get /tmp /tmp-local']) {
        const ran = await sftp(command);
        expect(ran.code, command).not.toBe(0);
      }
    });
  },
  { runtime: true },
);
