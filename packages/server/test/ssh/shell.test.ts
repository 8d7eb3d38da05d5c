import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';
import { eventually, type SshFixture, sshFixture } from './helpers.js';

describeStores(
  'ssh gateway: commands and shells',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let token: string;
    let ssh: SshFixture;
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers, { MY_SECRET: 'sekrit-ssh-value-42' });
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

    it('runs a command as user with the sandbox env: stdout, stderr and the exit code come back', async () => {
      const ran = await ssh.ssh(token, ['echo hi; echo "[$MY_SECRET] $(id -un)"; echo oops >&2; exit 3']);
      expect(ran.stdout).toBe('hi\n[sekrit-ssh-value-42] user\n');
      expect(ran.stderr).toBe('oops\n');
      expect(ran.code).toBe(3);
    });

    it('passes stdin to the command and ends it at EOF', async () => {
      const ran = await ssh.ssh(token, ['tr a-z A-Z; echo done'], 'hello over ssh\n');
      expect(ran.stdout).toBe('HELLO OVER SSH\ndone\n');
      expect(ran.code).toBe(0);
    });

    it('reports a command killed by a signal (exit-signal: ssh exits 255; verbose ssh names it)', async () => {
      const ran = await ssh.ssh(token, ['-v', 'kill -TERM $$']);
      expect(ran.code).toBe(255);
      expect(ran.stderr).toMatch(/exit-signal/);
    });

    it('opens an interactive login shell on a PTY (ssh -tt): typed lines run, exit ends it', async () => {
      const ran = await ssh.ssh(token, ['-tt'], 'echo $((6*7)); tty; echo "$TERM"\nexit 5\n');
      expect(ran.stdout).toMatch(/\b42\r?\n/);
      expect(ran.stdout).toMatch(/\/dev\/pts\/\d+/);
      expect(ran.code).toBe(5);
    });

    it('runs a command on a PTY when asked (ssh -t host cmd) with the requested terminal size', async () => {
      const ran = await ssh.ssh(token, ['-tt', 'stty size; tty']);
      expect(ran.stdout).toMatch(/^\d+ \d+\r?\n\/dev\/pts\/\d+/);
      expect(ran.code).toBe(0);
    });

    it('kills what a connection started when the connection goes away', async () => {
      const child = ssh.start('ssh', [
        '-p',
        String(ssh.gateway.port),
        ...ssh.common,
        '-o',
        'PubkeyAuthentication=no',
        `${token}@127.0.0.1`,
        'sleep 4242',
      ]);
      const sleeping = async () =>
        (await ctx.app.sandboxes.runtime.processes(id)).some((p) => p.args.join(' ').includes('sleep 4242'));
      await eventually(sleeping, 'the sleep to start');
      child.kill('SIGKILL');
      await eventually(async () => !(await sleeping()), 'the sleep to be killed');
    });

    it('counts SSH traffic as activity for the idle timeout', async () => {
      const old = '2000-01-01T00:00:00.000Z';
      await ctx.store.db
        .updateTable('sandboxes')
        .set({ last_activity_at: old })
        .where('id', '=', id)
        .execute();
      // Output after more than the 1 s activity write interval since anything else touched it.
      const ran = await ssh.ssh(token, ['sleep 1.5; echo tick']);
      expect(ran.stdout).toBe('tick\n');
      await eventually(async () => {
        const row = await ctx.store.db
          .selectFrom('sandboxes')
          .select('last_activity_at')
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        return row.last_activity_at !== null && row.last_activity_at > old;
      }, 'last_activity_at to move');
    });

    it('records the login in the audit log (who, which token, from where) without the token', async () => {
      await ssh.ssh(token, ['true']);
      const events = await ctx.store.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', 'sandbox.ssh.open')
        .where('target_id', '=', id)
        .execute();
      expect(events.length).toBeGreaterThan(0);
      expect(events[0]).toMatchObject({ actor_type: 'user', actor_id: owner.userId, ip: '127.0.0.1' });
      expect(JSON.parse(events[0]!.details)).toMatchObject({ via: 'token' });
      expect(JSON.stringify(events)).not.toContain(token);
    });
  },
  { runtime: true },
);
