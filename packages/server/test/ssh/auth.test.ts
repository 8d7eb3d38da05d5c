import ssh2 from 'ssh2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { parsePublicKey } from '../../src/services/ssh/keys.js';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, memberOf } from '../terminal/helpers.js';
import { keyOnly, type SshFixture, sshFixture, sshKeygen } from './helpers.js';

/** Logs in with ssh2's client (password method); resolves 'ready' or 'denied'. */
function tryPassword(port: number, username: string, password: string): Promise<string> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    client.on('ready', () => {
      client.end();
      resolve('ready');
    });
    client.on('error', (err: Error & { level?: string }) =>
      resolve(err.level === 'client-authentication' ? 'denied' : err.message),
    );
    client.connect({ host: '127.0.0.1', port, username, password, tryKeyboard: false, readyTimeout: 20_000 });
  });
}

describeStores(
  'ssh gateway: logins and refusals',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let ssh: SshFixture;
    const mint = (sandboxId: string, kind: 'ssh' | 'shell' = 'ssh', nowMs?: number) =>
      ctx.app.sandboxTokens.mint(
        { sandboxId, workspaceId: owner.workspaceId, kind, createdBy: owner.userId },
        nowMs,
      );
    const register = (headers: { authorization: string }, publicKey: string) =>
      ctx.app.inject({
        method: 'POST',
        url: '/v1/account/ssh-keys',
        headers,
        payload: { name: 'laptop', public_key: publicKey },
      });
    const denied = (ran: { code: number | null; stderr: string }) => {
      expect(ran.code).toBe(255);
      expect(ran.stderr).toMatch(/Permission denied/);
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      ssh = await sshFixture(ctx);
    });
    afterAll(async () => {
      await ssh?.close();
    });

    it('logs in with a registered key as <sandbox id>@host (developer or more), and marks the key used', async () => {
      const key = sshKeygen(ssh.dir, 'owner_key');
      const res = await register(owner.headers, key.publicKey);
      expect(res.statusCode, res.body).toBe(201);
      const ran = await ssh.ssh(id, ['echo key-$((40+2)); id -un'], undefined, keyOnly(key.file));
      expect(ran.stderr).toBe('');
      expect(ran.stdout).toBe('key-42\nuser\n');
      expect(ran.code).toBe(0);
      const row = await ctx.store.db
        .selectFrom('ssh_keys')
        .selectAll()
        .where('id', '=', res.json().id)
        .executeTakeFirstOrThrow();
      expect(row.last_used_at).not.toBeNull();
      const event = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', 'sandbox.ssh.open')
        .where('target_id', '=', id)
        .executeTakeFirstOrThrow();
      expect(event).toMatchObject({
        actor_type: 'user',
        actor_id: owner.userId,
        workspace_id: owner.workspaceId,
      });
      expect(JSON.parse(event.details)).toEqual({ via: 'key', ssh_key_id: row.id });

      // A developer of the workspace may too.
      const devUser = await ctx.createUser();
      await ctx.store.db
        .insertInto('members')
        .values({
          workspace_id: owner.workspaceId,
          user_id: devUser.id,
          role: 'developer',
          created_at: new Date().toISOString(),
        })
        .execute();
      const devKey = sshKeygen(ssh.dir, 'dev_key');
      await ctx.store.db
        .insertInto('ssh_keys')
        .values({
          id: newId('sshk'),
          user_id: devUser.id,
          name: 'dev',
          algorithm: 'ssh-ed25519',
          public_key: devKey.publicKey.split(' ').slice(0, 2).join(' '),
          fingerprint: parsePublicKey(devKey.publicKey).fingerprint,
          created_at: new Date().toISOString(),
          last_used_at: null,
        })
        .execute();
      expect((await ssh.ssh(id, ['echo dev-ok'], undefined, keyOnly(devKey.file))).stdout).toBe('dev-ok\n');
    });

    it('refuses tokens that are unknown, expired, revoked, or of another kind', async () => {
      denied(await ssh.ssh(`crl_tk_${'A'.repeat(40)}`, ['true']));
      const expired = await mint(id, 'ssh', Date.now() - 2 * 3600_000);
      denied(await ssh.ssh(expired.token, ['true']));
      const revoked = await mint(id);
      expect((await ssh.ssh(revoked.token, ['echo live'])).stdout).toBe('live\n');
      await ctx.app.sandboxTokens.revoke(id, revoked.id);
      denied(await ssh.ssh(revoked.token, ['true']));
      const shell = await mint(id, 'shell');
      denied(await ssh.ssh(shell.token, ['true']));
    });

    it("refuses a token as the password of a sandbox id (its own or another's)", async () => {
      const other = await createSandbox(ctx, owner.headers);
      const token = (await mint(id)).token;
      expect(await tryPassword(ssh.gateway.port, other, token)).toBe('denied');
      expect(await tryPassword(ssh.gateway.port, id, token)).toBe('denied');
      // The token as user name with any password opens its own sandbox only.
      expect(await tryPassword(ssh.gateway.port, token, 'anything')).toBe('ready');
    });

    it('refuses keys that are not registered, of a stranger, of a viewer, or deleted; and unknown sandboxes', async () => {
      const unregistered = sshKeygen(ssh.dir, 'nobody');
      denied(await ssh.ssh(id, ['true'], undefined, keyOnly(unregistered.file)));

      const stranger = await ctx.createCaller();
      const strangerKey = sshKeygen(ssh.dir, 'stranger');
      expect((await register(stranger.headers, strangerKey.publicKey)).statusCode).toBe(201);
      denied(await ssh.ssh(id, ['true'], undefined, keyOnly(strangerKey.file)));
      // The stranger's own sandbox opens with it: the key works, the workspace decides.
      const strangerBox = await createSandbox(ctx, stranger.headers);
      expect((await ssh.ssh(strangerBox, ['echo mine'], undefined, keyOnly(strangerKey.file))).stdout).toBe(
        'mine\n',
      );

      const viewer = await memberOf(ctx, owner.workspaceId, 'viewer');
      const viewerKey = sshKeygen(ssh.dir, 'viewer');
      expect((await register(viewer, viewerKey.publicKey)).statusCode).toBe(201);
      denied(await ssh.ssh(id, ['true'], undefined, keyOnly(viewerKey.file)));

      const gone = sshKeygen(ssh.dir, 'gone');
      const created = await register(owner.headers, gone.publicKey);
      expect((await ssh.ssh(id, ['true'], undefined, keyOnly(gone.file))).code).toBe(0);
      const removed = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/account/ssh-keys/${created.json().id}`,
        headers: owner.headers,
      });
      expect(removed.statusCode).toBe(204);
      denied(await ssh.ssh(id, ['true'], undefined, keyOnly(gone.file)));

      denied(await ssh.ssh('sbx_nosuchsandbox0000000000', ['true'], undefined, keyOnly(gone.file)));
      denied(await ssh.ssh('root', ['true'], undefined, keyOnly(unregistered.file)));
    });

    it('tells a client whose sandbox is stopped so, and exits 1 (commands, shells and sftp)', async () => {
      const box = await createSandbox(ctx, owner.headers);
      const token = (await mint(box)).token;
      const stopped = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${box}/stop`,
        headers: owner.headers,
      });
      expect(stopped.statusCode, stopped.body).toBe(200);
      const ran = await ssh.ssh(token, ['echo should-not-run']);
      expect(ran.code).toBe(1);
      expect(ran.stdout).toBe('');
      expect(ran.stderr).toContain(`sandbox ${box} is stopped; start it first`);
      const shell = await ssh.ssh(token, ['-tt'], 'echo nope\n');
      expect(shell.code).toBe(1);
      const sftp = await ssh.run(
        'sftp',
        ['-P', String(ssh.gateway.port), ...ssh.common, '-b', '-', `${token}@127.0.0.1`],
        'ls\n',
      );
      expect(sftp.code).not.toBe(0);
      expect(sftp.stderr).toMatch(/is stopped/);
    });
  },
  { runtime: true },
);
