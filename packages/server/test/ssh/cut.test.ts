import type { ChildProcess } from 'node:child_process';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addMember, describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';
import { keyOnly, type SshFixture, sshFixture, sshKeygen, TOKEN_ONLY } from './helpers.js';

/** The periodic re-check in this suite (the default is 15 s). */
const CHECK_MS = 200;
/** Deadline of every wait (generous: the host may be loaded). */
const WAIT_MS = 30_000;

/** A running `ssh` client: its output so far, and how it ended. */
interface Session {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Waits until `check` holds; throws (with `what`) after WAIT_MS. */
async function until(check: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeStores(
  'ssh gateway: open connections end when their token or key does',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let ssh: SshFixture;

    /** A developer of the owner's workspace, with an API key (scope `*`) to register SSH keys. */
    const developer = () => addMember(ctx, owner.workspaceId, 'developer');
    /** Registers a new key pair for the caller: the private key file and the key id. */
    const registerKey = async (headers: { authorization: string }, name: string) => {
      const pair = sshKeygen(ssh.dir, name);
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/account/ssh-keys',
        headers,
        payload: { name, public_key: pair.publicKey },
      });
      expect(res.statusCode, res.body).toBe(201);
      return { file: pair.file, id: res.json().id as string };
    };
    /** `ssh user@gateway 'echo ready; sleep 600'`, running until the gateway cuts it. */
    const open = async (user: string, auth: string[]): Promise<Session> => {
      const child = ssh.start('ssh', [
        '-p',
        String(ssh.gateway.port),
        ...ssh.common,
        ...auth,
        `${user}@127.0.0.1`,
        'echo ready-$((3*3)); exec sleep 600',
      ]);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => {
        stdout += String(d);
      });
      child.stderr!.on('data', (d) => {
        stderr += String(d);
      });
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      await until(
        () => stdout.includes('ready-9'),
        () => `no ready line: ${stdout} ${stderr}`,
      );
      return { child, stdout: () => stdout, stderr: () => stderr, exited };
    };
    const mintSsh = async (headers: { authorization: string }) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/tunnel`,
        headers,
        payload: { kind: 'ssh' },
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string };
    };
    /** How many `sleep 600` (what the sessions run) are alive in the sandbox. */
    const sleepers = async () => {
      const script =
        'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done | grep -c "^sleep 600" || true';
      const proc = await ctx.engine.runtime.exec(id, { command: '/bin/sh', args: ['-c', script] });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => {
        out += String(d);
      });
      await proc.wait();
      return Number(out.trim());
    };
    /** Waits until `sleepers()` is `count`. */
    const sleepersAre = async (count: number) => {
      const deadline = Date.now() + WAIT_MS;
      let now = await sleepers();
      while (now !== count) {
        if (Date.now() > deadline) throw new Error(`${now} sleepers, expected ${count}`);
        await new Promise((r) => setTimeout(r, 100));
        now = await sleepers();
      }
    };
    /** The audit event of `action` on `targetId` whose details match. */
    const audited = async (targetId: string, action: string, details: Record<string, unknown>) => {
      const events = (await ctx.app.audit.listForTarget(targetId, { limit: 500 })).data;
      return events
        .filter((e) => e.action === action)
        .map((e) => e.details)
        .find((d) => Object.entries(details).every(([k, v]) => d[k] === v));
    };

    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      ssh = await sshFixture(ctx);
      ctx.app.tokenConnections.checkEvery(CHECK_MS);
    });
    afterAll(async () => {
      await ssh?.close();
    });

    it('revoking the token (DELETE …/tokens/{id}) cuts its open session at once, with a message; its process is killed', async () => {
      ctx.app.tokenConnections.checkEvery(3_600_000); // no re-check: the revoke route itself cuts it
      try {
        const minted = await mintSsh(owner.headers);
        const session = await open(minted.token, TOKEN_ONLY);
        const other = await open((await mintSsh(owner.headers)).token, TOKEN_ONLY);
        await sleepersAre(2);
        const res = await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/sandboxes/${id}/tokens/${minted.id}`,
          headers: owner.headers,
        });
        expect(res.statusCode, res.body).toBe(204);
        expect(await session.exited).toBe(1);
        expect(session.stderr()).toContain('corral: token revoked');
        expect(await audited(id, 'sandbox.token.revoke', { token_id: minted.id })).toMatchObject({
          kind: 'ssh',
          closed_connections: 1,
        });
        // The revoked session's process is gone; the other token's session runs on.
        await sleepersAre(1);
        expect(other.child.exitCode).toBeNull();
        other.child.kill('SIGKILL');
        await other.exited;
        await sleepersAre(0);
      } finally {
        ctx.app.tokenConnections.checkEvery(CHECK_MS);
      }
    });

    it('a token revoked elsewhere (another replica, straight in the store) cuts the session at the next check', async () => {
      const minted = await mintSsh(owner.headers);
      const session = await open(minted.token, TOKEN_ONLY);
      expect(await ctx.app.sandboxTokens.revoke(id, minted.id)).toBe(true);
      expect(await session.exited).toBe(1);
      expect(session.stderr()).toContain('corral: token revoked');
      await sleepersAre(0);
    });

    it('deleting the registered key (DELETE /v1/account/ssh-keys/{id}) cuts the sessions logged in with it, at once', async () => {
      ctx.app.tokenConnections.checkEvery(3_600_000);
      try {
        const dev = await developer();
        const key = await registerKey(dev.headers, 'cut-by-delete');
        const kept = await registerKey(dev.headers, 'kept');
        const session = await open(id, keyOnly(key.file));
        const other = await open(id, keyOnly(kept.file));
        const res = await ctx.app.inject({
          method: 'DELETE',
          url: `/v1/account/ssh-keys/${key.id}`,
          headers: dev.headers,
        });
        expect(res.statusCode, res.body).toBe(204);
        expect(await session.exited).toBe(1);
        expect(session.stderr()).toContain('corral: ssh key removed');
        expect(await audited(key.id, 'ssh_key.delete', {})).toMatchObject({ closed_connections: 1 });
        await sleepersAre(1);
        expect(other.child.exitCode).toBeNull();
        other.child.kill('SIGKILL');
        await other.exited;
        await sleepersAre(0);
      } finally {
        ctx.app.tokenConnections.checkEvery(CHECK_MS);
      }
    });

    it('a key owner no longer developer (demoted to viewer) is cut at the next check', async () => {
      const dev = await developer();
      const key = await registerKey(dev.headers, 'cut-by-demotion');
      const session = await open(id, keyOnly(key.file));
      await ctx.store.db
        .updateTable('members')
        .set({ role: 'viewer' })
        .where('workspace_id', '=', owner.workspaceId)
        .where('user_id', '=', dev.userId)
        .execute();
      expect(await session.exited).toBe(1);
      expect(session.stderr()).toContain('corral: ssh key removed or access revoked');
      await sleepersAre(0);
      // And the key opens nothing more.
      const again = await ssh.ssh(id, ['echo no'], undefined, keyOnly(key.file));
      expect(again.code).toBe(255);
      expect(again.stdout).toBe('');
    });

    it('a connection with no shell open (SFTP only) is disconnected too', async () => {
      const minted = await mintSsh(owner.headers);
      const client = new ssh2.Client();
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
        client.connect({
          host: '127.0.0.1',
          port: ssh.gateway.port,
          username: minted.token,
          readyTimeout: WAIT_MS,
        });
      });
      try {
        const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) =>
          client.sftp((err, s) => (err ? reject(err) : resolve(s))),
        );
        const list = await new Promise<unknown[]>((resolve, reject) =>
          sftp.readdir('/tmp', (err, entries) => (err ? reject(err) : resolve(entries))),
        );
        expect(Array.isArray(list)).toBe(true);
        expect(await ctx.app.sandboxTokens.revoke(id, minted.id)).toBe(true);
        await closed;
      } finally {
        client.end();
      }
    });
  },
  { runtime: true },
);
