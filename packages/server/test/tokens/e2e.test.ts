import { afterAll, beforeAll, expect, it } from 'vitest';
import { listenPort, previewHost, send } from '../preview/helpers.js';
import { type SandboxServer, startSandboxServer } from '../preview/sandbox-server.js';
import { type SshFixture, sshFixture } from '../ssh/helpers.js';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';

describeStores(
  'tokens: what the minted answers open (OpenSSH client, preview proxy)',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let ssh: SshFixture;
    let server: SandboxServer;
    let serverPort: number;
    const mint = async (path: string, payload: object) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${path}`,
        headers: owner.headers,
        payload,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string; url: string; command: string };
    };
    const revoke = async (tokenId: string) => {
      const res = await ctx.app.inject({
        method: 'DELETE',
        url: `/v1/sandboxes/${id}/tokens/${tokenId}`,
        headers: owner.headers,
      });
      expect(res.statusCode, res.body).toBe(204);
    };
    /** GET the answer's preview URL on this suite's server (Host header instead of DNS). */
    const open = (answer: { url: string }, headers: Record<string, string> = {}) => {
      const u = new URL(answer.url);
      const port = Number(u.hostname.split('-')[0]);
      return send(serverPort, previewHost(id, port, serverPort), {
        path: `${u.pathname}${u.search}`,
        headers,
      });
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      serverPort = await listenPort(ctx);
      ssh = await sshFixture(ctx);
      server = await startSandboxServer(ctx, id, 3000);
    });
    afterAll(async () => {
      server?.stop();
      await ssh?.close();
    });

    it("tunnel ssh: the answer's command logs in with the OpenSSH client until the token is revoked", async () => {
      const answer = await mint('tunnel', { kind: 'ssh' });
      const match = /^ssh -p (\d+) (crl_tk_[0-9A-Za-z]{40})@(\S+)$/.exec(answer.command);
      expect(match, answer.command).not.toBeNull();
      expect(Number(match![1])).toBe(ctx.config.sshPort);
      expect(match![2]).toBe(answer.token);
      expect(match![3]).toBe(new URL(ctx.config.publicUrl).hostname);
      // The suite's gateway listens on its own port; the user name is the command's.
      const ran = await ssh.ssh(match![2]!, ['echo hi-$((40+2)); whoami']);
      expect(ran.stdout).toBe('hi-42\nuser\n');
      expect(ran.code).toBe(0);

      // A shell or port token is not an SSH login.
      const shell = await mint('tunnel', { kind: 'shell' });
      expect((await ssh.ssh(shell.token, ['echo no'])).code).toBe(255);

      await revoke(answer.id);
      const refused = await ssh.ssh(answer.token, ['echo no']);
      expect(refused.code).toBe(255);
      expect(refused.stdout).toBe('');
    }, 120_000);

    it('port-forward: the answer URL swaps the token for a cookie and opens that port only, until revoked', async () => {
      const answer = await mint('port-forward', { port: 3000 });
      const first = await open(answer);
      expect(first.status, first.text).toBe(302);
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      expect(cookie).not.toBe('');
      const page = await send(serverPort, previewHost(id, 3000, serverPort), {
        path: '/',
        headers: { cookie },
      });
      expect(page.status, page.text).toBe(200);
      expect(page.text).toBe('hello from 3000 GET /');
      // Another port of the same sandbox is not opened by this token.
      const other = await send(serverPort, previewHost(id, 3001, serverPort), {
        path: `/?corral_token=${answer.token}`,
      });
      expect(other.status).toBe(401);

      // tunnel kind port answers the same kind of URL.
      const tunnel = await mint('tunnel', { kind: 'port', port: 3000 });
      expect((await open(tunnel)).status).toBe(302);

      await revoke(answer.id);
      expect((await open(answer)).status).toBe(401);
    }, 120_000);
  },
  { runtime: true },
);
