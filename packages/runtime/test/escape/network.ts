import type { Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Server as TcpServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime, SandboxSpec } from '../../src/interface.js';
import type { NetworkManagerOptions } from '../../src/local/network/index.js';
import {
  HOST_PEER,
  hostCanConnect,
  lockTestHosts,
  must,
  sh,
  startTestDns,
  startTestHost,
  stopTestHost,
  type TestHost,
} from '../network/hosts.js';
import { shell, waitFor } from '../shared/sandbox-shell.js';

/** Names a driver's network manager must use in this section (private to the test run). */
export type EscapeNetworkNames = Required<
  Pick<NetworkManagerOptions, 'bridge' | 'tableName' | 'netnsPrefix' | 'vethPrefix' | 'subnet'>
>;

/** What a driver hands the network section. */
export interface NetworkEscapeContext {
  name: string;
  names: EscapeNetworkNames;
  /** A runtime whose network manager uses `names` and `upstreamDns` (the test's DNS server) only. */
  makeRuntime(
    stateDir: string,
    network: EscapeNetworkNames & { upstreamDns: string[] },
  ): Runtime | Promise<Runtime>;
}

// Test hosts (own netns each, reached through a host veth `crte-*`): nothing leaves the machine.
const HOSTS = [
  { netns: 'crte-inet', link: 'crte-inet', address: '203.0.113.10', body: 'internet-10' },
  { netns: 'crte-inet2', link: 'crte-inet2', address: '203.0.113.11', body: 'internet-11' },
  { netns: 'crte-meta', link: 'crte-meta', address: '169.254.169.254', body: 'metadata' },
  { netns: 'crte-priv', link: 'crte-priv', address: '10.203.0.10', body: 'private' },
];
const SANDBOX_PORT = 8080;

// Bash helpers available to every probe script; each attempt is bounded to 2 s.
const PROBE = `
probe() { if timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo "OPEN $1:$2"; else echo "closed $1:$2"; fi; }
fetch() { curl -s --max-time 2 "$1" || echo "FAILED $1"; echo; }
resolve() { timeout 2 getent hosts "$1" || echo "NORESOLVE $1"; }
`;

/**
 * Network escapes against real sandboxes: `internet` reaches the internet host and nothing of the
 * host, other sandboxes, link-local or private ranges; `none` reaches and resolves nothing;
 * `allowlist` reaches exactly what it names; `setNetwork` changes a running sandbox's policy.
 */
export function describeNetworkEscapes(ctx: NetworkEscapeContext): void {
  const { names } = ctx;
  const guardTable = `${names.tableName}_guard`;

  describe(`${ctx.name} network escapes`, () => {
    let stateDir = '';
    let rt: Runtime;
    let release: (() => void) | undefined;
    let dns: { port: number; socket: Socket; tcp: TcpServer } | undefined;
    const hosts: TestHost[] = [];
    const hostServers: Server[] = [];
    let hostPort = 0;
    /** Every address the host itself answers on (loopback, the bridge, real interfaces…). */
    const hostAddresses: string[] = [];
    const tag = Math.random().toString(16).slice(2, 8);
    const spec = (n: string, network: SandboxSpec['network']): SandboxSpec => ({
      id: `escnet-${tag}-${n}`,
      template: 'base',
      resources: { cpu: 1, memoryMb: 256, diskMb: 256, pids: 256 },
      env: {},
      network,
      metadata: {},
    });
    const run = async (id: string, script: string) => {
      const result = await shell(rt, id, `${PROBE}\n${script}`);
      return result.stdout;
    };
    let peer = { id: '', address: '' };

    async function removeFixtures(): Promise<void> {
      for (const host of HOSTS) await stopTestHost(host.netns, host.link);
      for (const line of (await sh('ip', ['netns', 'list'])).stdout.split('\n')) {
        const netns = line.split(' ')[0] ?? '';
        if (netns.startsWith(names.netnsPrefix)) await sh('ip', ['netns', 'del', netns]);
      }
      for (const table of [`inet ${names.tableName}`, `bridge ${names.tableName}`, `inet ${guardTable}`]) {
        await sh('nft', ['delete', 'table', ...table.split(' ')]);
      }
      await sh('ip', ['link', 'del', names.bridge]);
    }

    /** Listen on `address:port` (port 0 = any); resolves with the port, or null when it cannot. */
    function listen(address: string, port: number): Promise<number | null> {
      const server = createServer((_, res) => res.end('host'));
      return new Promise((resolve) => {
        server.once('error', () => resolve(null));
        server.listen(port, address, () => {
          hostServers.push(server);
          resolve((server.address() as { port: number }).port);
        });
      });
    }

    beforeAll(async () => {
      release = await lockTestHosts();
      await removeFixtures();
      // Safety net: sandbox traffic may leave the bridge only towards a test host's veth.
      await must('nft', [
        `add table inet ${guardTable}; add chain inet ${guardTable} guard { type filter hook forward priority -50; }; ` +
          `add rule inet ${guardTable} guard iifname "${names.bridge}" oifname != "crte-*" counter drop`,
      ]);
      for (const host of HOSTS)
        hosts.push(await startTestHost(host.netns, host.link, host.address, host.body));
      dns = await startTestDns({
        'allowed.test': '203.0.113.10',
        'other.test': '203.0.113.11',
        'private.test': '10.203.0.10',
        'metadata.test': '169.254.169.254',
      });
      stateDir = mkdtempSync(join(tmpdir(), `corral-escnet-${ctx.name}-`));
      rt = await ctx.makeRuntime(stateDir, { ...names, upstreamDns: [`127.0.0.1:${dns.port}`] });
      // A peer sandbox serving on all its addresses, and the host's own services.
      const peerSpec = spec('peer', { mode: 'internet' });
      await rt.create(peerSpec);
      await shell(
        rt,
        peerSpec.id,
        `nohup perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => ${SANDBOX_PORT}, Listen => 5, ReuseAddr => 1) or die; ` +
          `while ($c = $s->accept) { print $c "HTTP/1.0 200 OK\\r\\n\\r\\nsandbox-peer"; close $c }' >/dev/null 2>&1 &`,
      );
      // The peer's own address: `hostname -I` (getifaddrs over netlink), else the kernel's fib_trie.
      const own = await shell(
        rt,
        peerSpec.id,
        `{ hostname -I 2>/dev/null | tr ' ' '\\n'; perl -ne '$a = $1 if /\\|-- ([\\d.]+)/; print "$a\\n" if /32 host LOCAL/' /proc/net/fib_trie 2>/dev/null; } | grep -E '^[0-9]+(\\.[0-9]+){3}$' | grep -v '^127\\.' | head -1`,
      );
      peer = { id: peerSpec.id, address: own.stdout.trim().split('\n')[0] ?? '' };
      hostPort = (await listen('127.0.0.1', 0)) ?? 0;
      const candidates = [names.subnet.replace(/\.0\/\d+$/, '.1'), HOST_PEER];
      for (const list of Object.values(networkInterfaces())) {
        for (const info of list ?? [])
          if (info.family === 'IPv4' && !info.internal) candidates.push(info.address);
      }
      hostAddresses.push('127.0.0.1');
      for (const address of new Set(candidates)) {
        if ((await listen(address, hostPort)) !== null) hostAddresses.push(address);
      }
    });

    afterAll(async () => {
      for (const s of (await rt?.list().catch(() => [])) ?? []) await rt.destroy(s.id).catch(() => undefined);
      await rt?.close();
      for (const server of hostServers) server.close();
      for (const host of hosts) host.server.kill('SIGKILL');
      dns?.socket.close();
      dns?.tcp.close();
      await removeFixtures();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      release?.();
    });

    it('positive controls: the host reaches the test hosts, its own services and the peer sandbox', async () => {
      for (const host of HOSTS) expect(await hostCanConnect(host.address, 80)).toBe(true);
      for (const address of hostAddresses) expect(await hostCanConnect(address, hostPort)).toBe(true);
      expect(peer.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      await waitFor('the peer sandbox server', async () =>
        (await hostCanConnect(peer.address, SANDBOX_PORT)) ? true : undefined,
      );
      // The peer (internet) reaches its own server through its address, so the server answers.
      expect(await run(peer.id, `probe ${peer.address} ${SANDBOX_PORT}`)).toContain('OPEN');
    });

    it('internet reaches the internet host by address and by name', async () => {
      const out = await run(
        peer.id,
        'fetch http://203.0.113.10/; resolve allowed.test; fetch http://other.test/',
      );
      expect(out).toContain('internet-10');
      expect(out).toMatch(/^203\.0\.113\.10\s+allowed\.test$/m);
      expect(out).toContain('internet-11');
    });

    it("internet reaches none of the host's addresses, another sandbox, link-local or private ranges", async () => {
      const a = spec('inet', { mode: 'internet' });
      await rt.create(a);
      const targets = [
        ...hostAddresses.map((address) => `${address} ${hostPort}`),
        `${peer.address} ${SANDBOX_PORT}`,
        `${peer.address} 22`,
        '169.254.169.254 80',
        '10.203.0.10 80',
      ];
      const out = await run(
        a.id,
        `${targets.map((t) => `probe ${t} &`).join('\n')}\nwait; fetch http://private.test/; fetch http://metadata.test/`,
      );
      expect(out.match(/^closed /gm)?.length).toBe(targets.length);
      // Bodies start a line; a failed fetch prints `FAILED <url>`.
      expect(out).not.toMatch(/OPEN|^private|^metadata|sandbox-peer|^host/m);
      expect(out).toContain('FAILED http://private.test/');
      expect(out).toContain('FAILED http://metadata.test/');
      // The same sandbox still reaches the internet host: the refusals are policy, not breakage.
      expect(await run(a.id, 'fetch http://203.0.113.10/')).toContain('internet-10');
      await rt.destroy(a.id);
    });

    it('none reaches nothing and resolves nothing', async () => {
      const n = spec('none', { mode: 'none' });
      await rt.create(n);
      const targets = [
        ...HOSTS.map((h) => `${h.address} 80`),
        ...hostAddresses.map((a) => `${a} ${hostPort}`),
      ];
      const out = await run(
        n.id,
        `${targets.map((t) => `probe ${t} &`).join('\n')}\nwait; resolve allowed.test; fetch http://203.0.113.10/`,
      );
      expect(out).not.toMatch(/OPEN|internet-10/);
      expect(out).toContain('NORESOLVE allowed.test');
      await rt.destroy(n.id);
    });

    it('allowlist of a domain reaches its address only after resolving it, and nothing else', async () => {
      const l = spec('allow-dns', { mode: 'allowlist', allow: ['allowed.test'] });
      await rt.create(l);
      expect(await run(l.id, 'fetch http://203.0.113.10/')).toContain('FAILED');
      const out = await run(
        l.id,
        'resolve allowed.test; fetch http://203.0.113.10/; fetch http://203.0.113.11/; resolve other.test; ' +
          `probe 169.254.169.254 80; probe 10.203.0.10 80; probe ${peer.address} ${SANDBOX_PORT}; probe 127.0.0.1 ${hostPort}`,
      );
      expect(out).toMatch(/^203\.0\.113\.10\s+allowed\.test$/m);
      expect(out).toContain('internet-10');
      expect(out).toContain('FAILED http://203.0.113.11/');
      expect(out).toContain('NORESOLVE other.test');
      expect(out).not.toMatch(/OPEN|internet-11/);
      await rt.destroy(l.id);
    });

    it('allowlist of a CIDR reaches that address without DNS, and not the others', async () => {
      const c = spec('allow-cidr', { mode: 'allowlist', allow: ['203.0.113.11/32'] });
      await rt.create(c);
      const out = await run(
        c.id,
        'fetch http://203.0.113.11/; fetch http://203.0.113.10/; resolve allowed.test',
      );
      expect(out).toContain('internet-11');
      expect(out).toContain('FAILED http://203.0.113.10/');
      expect(out).toContain('NORESOLVE allowed.test');
      await rt.destroy(c.id);
    });

    it('setNetwork on a running sandbox: internet → none cuts at once, none → allowlist opens exactly that', async () => {
      const s = spec('switch', { mode: 'internet' });
      await rt.create(s);
      expect(await run(s.id, 'fetch http://203.0.113.10/')).toContain('internet-10');
      await rt.setNetwork(s.id, { mode: 'none' });
      const cut = await run(s.id, 'fetch http://203.0.113.10/; resolve other.test');
      expect(cut).toContain('FAILED http://203.0.113.10/');
      expect(cut).toContain('NORESOLVE other.test');
      await rt.setNetwork(s.id, { mode: 'allowlist', allow: ['allowed.test'] });
      const open = await run(
        s.id,
        'resolve allowed.test; fetch http://203.0.113.10/; fetch http://203.0.113.11/',
      );
      expect(open).toContain('internet-10');
      expect(open).toContain('FAILED http://203.0.113.11/');
      expect((await rt.get(s.id))?.network).toEqual({ mode: 'allowlist', allow: ['allowed.test'] });
      await rt.destroy(s.id);
    });

    it('cannot open raw or packet sockets, nor send from a spoofed source address', async () => {
      const x = spec('spoof', { mode: 'internet' });
      await rt.create(x);
      const r = await shell(
        rt,
        x.id,
        `perl -MSocket -e '
          print socket(my $r, AF_INET, SOCK_RAW, 255) ? "RAW-OK\\n" : "raw denied\\n";
          print socket(my $p, 17, SOCK_RAW, 0) ? "PACKET-OK\\n" : "packet denied\\n";
          socket(my $s, AF_INET, SOCK_STREAM, 6) or die;
          setsockopt($s, 0, 15, 1);   # IP_FREEBIND: bind an address this sandbox does not own
          # A refused bind ends the attempt: a connect now would use the sandbox's own address.
          bind($s, pack_sockaddr_in(0, inet_aton("${peer.address}"))) or do { print "bind denied\\n"; exit 0 };
          local $SIG{ALRM} = sub { print "spoof timed out\\n"; exit 0 };
          alarm 2;
          print connect($s, pack_sockaddr_in(80, inet_aton("203.0.113.10"))) ? "SPOOF-CONNECTED\\n" : "spoof refused\\n";'`,
        { user: 'root' },
      );
      expect(r.stdout).toContain('raw denied');
      expect(r.stdout).toContain('packet denied');
      expect(r.stdout).not.toMatch(/RAW-OK|PACKET-OK|SPOOF-CONNECTED/);
      await rt.destroy(x.id);
    });

    it('no sandbox packet tried to leave through a real interface (the guard counter is 0)', async () => {
      const guard = await must('nft', ['list', 'table', 'inet', guardTable]);
      expect(guard).toMatch(/counter packets 0 bytes 0 drop/);
    });
  });
}
