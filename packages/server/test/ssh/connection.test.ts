import ssh2 from 'ssh2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_CHANNELS_PER_CONNECTION } from '../../src/services/ssh/gateway.js';
import { DEFAULT_CHECK_INTERVAL_MS } from '../../src/services/token-connections.js';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';
import { eventually, type SshFixture, sshFixture } from './helpers.js';

/** A logged-in ssh2 client (the token as user name, method `none`). */
function login(port: number, token: string): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('ready', () => resolve(client));
    client.on('error', reject);
    client.connect({ host: '127.0.0.1', port, username: token, readyTimeout: 20_000 });
  });
}

/** Runs `command` on an open connection: stdout, stderr and the exit code. */
function exec(
  client: ssh2.Client,
  command: string,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      stream.on('data', (d: Buffer) => {
        stdout += String(d);
      });
      stream.stderr.on('data', (d: Buffer) => {
        stderr += String(d);
      });
      stream.on('exit', (c: number | null) => {
        code = c;
      });
      stream.on('close', () => resolve({ stdout, stderr, code }));
    });
  });
}

describeStores(
  'ssh gateway: one connection over time',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let ssh: SshFixture;
    const clients: ssh2.Client[] = [];
    const mint = () =>
      ctx.app.sandboxTokens.mint({
        sandboxId: id,
        workspaceId: owner.workspaceId,
        kind: 'ssh',
        createdBy: owner.userId,
      });
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      ssh = await sshFixture(ctx);
    });
    afterAll(async () => {
      for (const client of clients) client.end();
      await ssh?.close();
    });

    it('opens nothing more once its token is revoked elsewhere, even before the re-check cuts it', async () => {
      // The periodic re-check would end the connection (test/ssh/cut.test.ts); hold it off here.
      ctx.app.tokenConnections.checkEvery(3_600_000);
      try {
        const minted = await mint();
        const client = await login(ssh.gateway.port, minted.token);
        clients.push(client);
        expect(await exec(client, 'echo before')).toEqual({ stdout: 'before\n', stderr: '', code: 0 });
        await ctx.app.sandboxTokens.revoke(id, minted.id);
        const after = await exec(client, 'echo after');
        expect(after.stdout).toBe('');
        expect(after.stderr).toContain('revoked');
        expect(after.code).toBe(1);
      } finally {
        ctx.app.tokenConnections.checkEvery(DEFAULT_CHECK_INTERVAL_MS);
      }
    });

    it('resizes the PTY on window-change', async () => {
      const client = await login(ssh.gateway.port, (await mint()).token);
      clients.push(client);
      const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.shell({ rows: 30, cols: 100, term: 'xterm' }, (err, s) => (err ? reject(err) : resolve(s))),
      );
      let out = '';
      stream.on('data', (d: Buffer) => {
        out += String(d);
      });
      const waitFor = async (pattern: RegExp) => {
        const deadline = Date.now() + 20_000;
        while (!pattern.test(out)) {
          if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(out.slice(-500))}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      stream.write('stty size\n');
      await waitFor(/\r30 100\r\n/);
      stream.setWindow(43, 132, 0, 0);
      stream.write('stty size\n');
      await waitFor(/\r43 132\r\n/);
      const closed = new Promise((resolve) => stream.once('close', resolve));
      stream.write('exit\n');
      await closed;
    });

    it('leaves no file behind when the connection drops in the middle of an SFTP upload', async () => {
      const client = await login(ssh.gateway.port, (await mint()).token);
      const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) =>
        client.sftp((err, s) => (err ? reject(err) : resolve(s))),
      );
      const handle = await new Promise<Buffer>((resolve, reject) =>
        sftp.open('/tmp/half.bin', 'w', (err, h) => (err ? reject(err) : resolve(h))),
      );
      // More than the runtime takes whole (1 MiB): from there on the upload streams.
      const chunk = Buffer.alloc(32 * 1024, 7);
      for (let offset = 0; offset < 1.5 * 1024 * 1024; offset += chunk.length) {
        await new Promise<void>((resolve, reject) =>
          sftp.write(handle, chunk, 0, chunk.length, offset, (err) => (err ? reject(err) : resolve())),
        );
      }
      const temps = async () => {
        const proc = await ctx.app.sandboxes.runtime.exec(id, {
          command: 'sh',
          args: ['-c', 'ls -a /tmp | grep -c "^.corral-tmp-" || true'],
        });
        proc.stdin.end();
        let out = '';
        proc.stdout.on('data', (d: Buffer) => {
          out += String(d);
        });
        await proc.wait();
        return Number(out.trim());
      };
      // The upload streams into a temporary file beside the target …
      await eventually(async () => (await temps()) === 1, 'the temporary upload file');
      client.end();
      // … which is dropped with the connection: the target never appears.
      await eventually(async () => (await temps()) === 0, 'the temporary file to go');
      await expect(ctx.app.sandboxes.runtime.files.stat(id, '/tmp/half.bin')).rejects.toMatchObject({
        code: 'FILE_NOT_FOUND',
      });
    });

    it(`holds at most ${MAX_CHANNELS_PER_CONNECTION} channels per connection`, async () => {
      const client = await login(ssh.gateway.port, (await mint()).token);
      clients.push(client);
      const open = () =>
        new Promise<ssh2.ClientChannel | Error>((resolve) =>
          client.exec('sleep 60', (err, stream) => resolve(err ?? stream)),
        );
      const opened: ssh2.ClientChannel[] = [];
      for (let i = 0; i < MAX_CHANNELS_PER_CONNECTION; i++) {
        const channel = await open();
        expect(channel).not.toBeInstanceOf(Error);
        opened.push(channel as ssh2.ClientChannel);
      }
      expect(await open()).toBeInstanceOf(Error);
      // Closing one makes room again.
      const closed = new Promise((resolve) => opened[0]!.once('close', resolve));
      opened[0]!.resume();
      opened[0]!.close();
      await closed;
      const again = await open();
      expect(again).not.toBeInstanceOf(Error);
      client.end();
    });
  },
  { runtime: true },
);
