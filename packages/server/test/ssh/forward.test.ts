import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import type { ExecProcess } from '@corral/runtime';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox } from '../terminal/helpers.js';
import { eventually, freePort, type SshFixture, sshFixture, TOKEN_ONLY } from './helpers.js';

/** A tiny HTTP/1.0 server in perl (in every Debian base): answers each request with its first line. */
const PERL_SERVER = `
use IO::Socket::INET; $SIG{PIPE} = "IGNORE";
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) { my $l = <$c>; print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nfrom-sandbox: $l"; close $c; }
`;

/** Sends one request line to 127.0.0.1:`port` and returns the whole answer (or throws). */
function request(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('connect', () => socket.write(`${line}\r\n\r\n`));
    socket.on('data', (d) => {
      answer += String(d);
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

describeStores(
  'ssh gateway: -L port forwarding (direct-tcpip) into the sandbox',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let token: string;
    let ssh: SshFixture;
    let server: ExecProcess | undefined;
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
      server = await ctx.app.sandboxes.runtime.exec(id, {
        command: 'perl',
        args: ['-e', PERL_SERVER, '8765'],
      });
      await eventually(
        async () => (await ctx.app.sandboxes.runtime.ports(id)).some((p) => p.port === 8765),
        'the perl server to listen',
      );
    });
    afterAll(async () => {
      server?.kill('SIGKILL');
      await ssh?.close();
    });

    const forward = async (spec: string) => {
      const local = await freePort();
      const child = ssh.start('ssh', [
        '-p',
        String(ssh.gateway.port),
        ...ssh.common,
        ...TOKEN_ONLY,
        '-o',
        'ExitOnForwardFailure=yes',
        '-N',
        '-L',
        `127.0.0.1:${local}:${spec}`,
        `${token}@127.0.0.1`,
      ]);
      // Listening locally once ssh has logged in (checked without connecting: a probe would be
      // forwarded too, and the one-at-a-time server inside would be busy with it).
      await eventually(async () => {
        const out = execFileSync('ss', ['-Hltn', `sport = :${local}`], { encoding: 'utf8' });
        return out.trim() !== '';
      }, 'ssh -L to listen');
      return { local, child };
    };

    it('forwards a local port to a server listening on localhost inside the sandbox', async () => {
      const { local, child } = await forward('localhost:8765');
      try {
        for (const path of ['/one', '/two']) {
          const answer = await request(local, `GET ${path} HTTP/1.0`);
          expect(answer).toMatch(/^HTTP\/1\.0 200 OK/);
          expect(answer).toContain(`from-sandbox: GET ${path} HTTP/1.0`);
        }
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('takes any destination host as the sandbox itself (the server network is out of reach)', async () => {
      const { local, child } = await forward('10.255.255.1:8765');
      try {
        expect(await request(local, 'GET /elsewhere HTTP/1.0')).toContain('from-sandbox: GET /elsewhere');
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('refuses a port nothing listens on: the local connection is closed with no answer', async () => {
      const { local, child } = await forward('localhost:8799');
      try {
        const answer = await request(local, 'GET / HTTP/1.0').catch(() => '');
        expect(answer).toBe('');
      } finally {
        child.kill('SIGKILL');
      }
    });
  },
  { runtime: true },
);
