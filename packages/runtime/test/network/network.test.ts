import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRuntimeError } from '../../src/errors.js';
import {
  createNetworkManager,
  type NetworkManager,
  type SandboxNetwork,
} from '../../src/local/network/index.js';
import {
  fetchFrom,
  HOST_PEER,
  hostCanConnect,
  lockTestHosts,
  must,
  resolveFrom,
  serveIn,
  sh,
  startTestDns,
  startTestHost,
  stopTestHost,
  type TestHost,
  tcpQueryFrom,
} from './hosts.js';

// Names private to this suite, so it never touches a real Corral set-up on the same machine.
const BRIDGE = 'crtbr0';
const TABLE = 'corral_test';
const GUARD_TABLE = 'corral_test_guard';
const NETNS_PREFIX = 'corraltest-';
const VETH_PREFIX = 'ct-';
const SUBNET = '100.101.0.0/16';
const GATEWAY = '100.101.0.1';
const HOST_PORT = 18_080;

const TEST_HOSTS = [
  { netns: 'crth-inet', link: 'crth-inet', address: '203.0.113.10', body: 'internet-10' },
  { netns: 'crth-inet2', link: 'crth-inet2', address: '203.0.113.11', body: 'internet-11' },
  { netns: 'crth-meta', link: 'crth-meta', address: '169.254.169.254', body: 'metadata' },
  { netns: 'crth-priv', link: 'crth-priv', address: '10.203.0.10', body: 'private' },
];

async function removeFixtures(): Promise<void> {
  for (const host of TEST_HOSTS) await stopTestHost(host.netns, host.link);
  for (const netns of (await sh('ip', ['netns', 'list'])).stdout.split('\n')) {
    const name = netns.split(' ')[0] ?? '';
    if (name.startsWith(NETNS_PREFIX)) await sh('ip', ['netns', 'del', name]);
  }
  await sh('nft', ['delete', 'table', 'inet', TABLE]);
  await sh('nft', ['delete', 'table', 'bridge', TABLE]);
  await sh('nft', ['delete', 'table', 'inet', GUARD_TABLE]);
  await sh('ip', ['link', 'del', BRIDGE]);
}

describe('local network manager (real kernel)', () => {
  let stateDir: string;
  let manager: NetworkManager;
  let dns: { port: number; socket: Socket; tcp: TcpServer };
  const hosts: TestHost[] = [];
  const servers: ChildProcess[] = [];
  const hostServers: Server[] = [];
  let counter = 0;
  let release: (() => void) | undefined;
  const newId = () => `t${process.pid}-${++counter}`;
  const nsOf = (id: string) => `${NETNS_PREFIX}${id}`;

  function makeManager(): NetworkManager {
    return createNetworkManager({
      stateDir,
      bridge: BRIDGE,
      subnet: SUBNET,
      tableName: TABLE,
      netnsPrefix: NETNS_PREFIX,
      vethPrefix: VETH_PREFIX,
      upstreamDns: [`127.0.0.1:${dns.port}`],
    });
  }

  beforeAll(async () => {
    // The test hosts' addresses and host routes are machine-wide: one suite at a time.
    release = await lockTestHosts();
    await removeFixtures();
    stateDir = await mkdtemp(join(tmpdir(), 'corral-net-'));
    // Safety net: whatever the rules under test do, sandbox traffic may only leave through a
    // test host's veth — never through a real interface.
    await sh('nft', [
      `add table inet ${GUARD_TABLE}; add chain inet ${GUARD_TABLE} guard_forward { type filter hook forward priority -50; }; add rule inet ${GUARD_TABLE} guard_forward iifname "${BRIDGE}" oifname != "crth-*" counter drop`,
    ]).then((result) => {
      if (result.code !== 0) throw new Error(`guard table: ${result.stderr}`);
    });
    for (const host of TEST_HOSTS)
      hosts.push(await startTestHost(host.netns, host.link, host.address, host.body));
    dns = await startTestDns({
      'allowed.test': '203.0.113.10',
      'other.test': '203.0.113.11',
      'a.wild.test': '203.0.113.10',
      'private.test': '10.203.0.10',
    });
    manager = makeManager();
    await manager.init();
    // Services of the host itself that no sandbox may reach.
    for (const address of ['127.0.0.1', GATEWAY, HOST_PEER]) {
      const server = createServer((_, res) => res.end('host')).listen(HOST_PORT, address);
      await new Promise((resolve) => server.once('listening', resolve));
      hostServers.push(server);
    }
  });

  afterAll(async () => {
    for (const id of (await manager?.list().catch(() => [])) ?? [])
      await manager.teardown(id).catch(() => {});
    await manager?.close();
    for (const server of hostServers) server.close();
    for (const child of servers) child.kill('SIGKILL');
    for (const host of hosts) host.server.kill('SIGKILL');
    dns?.socket.close();
    dns?.tcp.close();
    await removeFixtures();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    release?.();
  });

  it('the fixtures work from the host (positive controls)', async () => {
    for (const host of TEST_HOSTS) expect(await hostCanConnect(host.address, 80)).toBe(true);
    expect(await hostCanConnect(GATEWAY, HOST_PORT)).toBe(true);
  });

  describe('internet', () => {
    let a: SandboxNetwork;
    let aId: string;
    let b: SandboxNetwork;
    let bId: string;

    beforeAll(async () => {
      aId = newId();
      bId = newId();
      a = await manager.setup(aId, { mode: 'internet' });
      b = await manager.setup(bId, { mode: 'internet' });
      servers.push(await serveIn(nsOf(bId), 8080, 'sandbox-b'));
    });

    it('returns the namespace, an address in the subnet and the bridge as gateway and DNS', async () => {
      expect(a.netnsPath).toBe(`/run/netns/${nsOf(aId)}`);
      expect(a.address).toMatch(/^100\.101\.\d+\.\d+$/);
      expect(a.address).not.toBe(b.address);
      expect(a.gateway).toBe(GATEWAY);
      expect(a.dnsServer).toBe(GATEWAY);
      expect((await manager.list()).sort()).toEqual([aId, bId].sort());
      const link = await must('ip', ['-n', nsOf(aId), '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      expect(link).toContain(`${a.address}/16`);
      const v6 = await must('ip', [
        'netns',
        'exec',
        nsOf(aId),
        'cat',
        '/proc/sys/net/ipv6/conf/all/disable_ipv6',
      ]);
      expect(v6.trim()).toBe('1');
    });

    it('reaches the internet host by address and by name', async () => {
      expect(await fetchFrom(nsOf(aId), 'http://203.0.113.10/')).toBe('internet-10');
      expect(await fetchFrom(nsOf(aId), 'http://other.test/')).toBe('internet-11');
    });

    it('does not reach the metadata host, private ranges or the host itself', async () => {
      expect(await fetchFrom(nsOf(aId), 'http://169.254.169.254/')).toBeNull();
      expect(await fetchFrom(nsOf(aId), 'http://10.203.0.10/')).toBeNull();
      expect(await fetchFrom(nsOf(aId), `http://${GATEWAY}:${HOST_PORT}/`)).toBeNull();
      expect(await fetchFrom(nsOf(aId), `http://${HOST_PEER}:${HOST_PORT}/`)).toBeNull();
      expect(await fetchFrom(nsOf(aId), `http://127.0.0.1:${HOST_PORT}/`)).toBeNull();
    });

    it('does not reach another sandbox (which the host can reach)', async () => {
      expect(await hostCanConnect(b.address, 8080)).toBe(true);
      expect(await fetchFrom(nsOf(aId), `http://${b.address}:8080/`)).toBeNull();
    });

    it('cannot spoof another source address', async () => {
      // Root in the netns (the test, not a sandbox user) adds a second address; the bridge drops it.
      await must('ip', ['-n', nsOf(aId), 'addr', 'add', '100.101.200.200/16', 'dev', 'eth0']);
      const spoofed = await sh(
        'ip',
        [
          'netns',
          'exec',
          nsOf(aId),
          'curl',
          '-s',
          '--max-time',
          '2',
          '--interface',
          '100.101.200.200',
          'http://203.0.113.10/',
        ],
        5_000,
      );
      await must('ip', ['-n', nsOf(aId), 'addr', 'del', '100.101.200.200/16', 'dev', 'eth0']);
      expect(spoofed.stdout).toBe('');
      // …and it was the layer-2 anti-spoofing rule that dropped it.
      const chain = await must('nft', ['list', 'chain', 'bridge', TABLE, 'prerouting_hook']);
      const dropped = /ip saddr != @ports counter packets (\d+)/.exec(chain);
      expect(Number(dropped?.[1] ?? 0)).toBeGreaterThan(0);
    });

    it('counts bytes from the sandbox perspective', async () => {
      const before = await manager.counters(aId);
      expect(await fetchFrom(nsOf(aId), 'http://203.0.113.10/')).toBe('internet-10');
      const after = await manager.counters(aId);
      expect(after.rxBytes).toBeGreaterThan(before.rxBytes);
      expect(after.txBytes).toBeGreaterThan(before.txBytes);
    });

    it('update to none takes effect before it resolves, and back to internet', async () => {
      expect(await fetchFrom(nsOf(aId), 'http://203.0.113.10/')).toBe('internet-10');
      await manager.update(aId, { mode: 'none' });
      expect(await fetchFrom(nsOf(aId), 'http://203.0.113.10/')).toBeNull();
      expect(await resolveFrom(nsOf(aId), GATEWAY, 'allowed.test')).toBe('ERR EREFUSED');
      await manager.update(aId, { mode: 'internet' });
      expect(await fetchFrom(nsOf(aId), 'http://203.0.113.10/')).toBe('internet-10');
    });
  });

  it('update to none also cuts a connection that is already open', async () => {
    const id = newId();
    await manager.setup(id, { mode: 'internet' });
    const client = spawn('ip', ['netns', 'exec', nsOf(id), process.execPath, '-e', KEEPALIVE_CLIENT]);
    servers.push(client);
    const lines = collectLines(client);
    await lines.waitFor('connected');
    client.stdin.write('go\n');
    await lines.waitFor('response 1');
    await manager.update(id, { mode: 'none' });
    client.stdin.write('go\n');
    // Either a reset arrives at once or nothing does; a second response must not.
    await lines.waitFor('error', 2_000).catch(() => {});
    expect(lines.seen).not.toContain('response 2');
    client.kill('SIGKILL');
    await manager.teardown(id);
  });

  it('setup on an existing id keeps its address and replaces the policy', async () => {
    const id = newId();
    const first = await manager.setup(id, { mode: 'none' });
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
    const second = await manager.setup(id, { mode: 'internet' });
    expect(second.address).toBe(first.address);
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
    await manager.teardown(id);
    await manager.teardown(id);
  });

  describe('none', () => {
    it('reaches nothing and DNS refuses', async () => {
      const id = newId();
      await manager.setup(id, { mode: 'none' });
      for (const host of TEST_HOSTS) expect(await fetchFrom(nsOf(id), `http://${host.address}/`)).toBeNull();
      expect(await fetchFrom(nsOf(id), `http://${GATEWAY}:${HOST_PORT}/`)).toBeNull();
      expect(await resolveFrom(nsOf(id), GATEWAY, 'allowed.test')).toBe('ERR EREFUSED');
      await manager.teardown(id);
    });
  });

  describe('allowlist', () => {
    it('a domain: reachable only after resolving it, other names NXDOMAIN, other hosts dropped', async () => {
      const id = newId();
      await manager.setup(id, { mode: 'allowlist', allow: ['allowed.test', '*.wild.test'] });
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
      expect(await resolveFrom(nsOf(id), GATEWAY, 'other.test')).toBe('ERR ENOTFOUND');
      expect(await resolveFrom(nsOf(id), GATEWAY, 'wild.test')).toBe('ERR ENOTFOUND');
      expect(await resolveFrom(nsOf(id), GATEWAY, 'a.wild.test')).toBe('OK 203.0.113.10');
      expect(await tcpQueryFrom(nsOf(id), GATEWAY, 'other.test')).toBe('rcode=3 answers=0');
      expect(await tcpQueryFrom(nsOf(id), GATEWAY, 'allowed.test')).toBe('rcode=0 answers=1');
      expect(await fetchFrom(nsOf(id), 'http://allowed.test/')).toBe('internet-10');
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.11/')).toBeNull();
      expect(await fetchFrom(nsOf(id), 'http://169.254.169.254/')).toBeNull();
      const set = await must('nft', ['list', 'set', 'inet', TABLE, `dns_${await keyOf(id)}`]);
      expect(set).toContain('203.0.113.10');
      // Same names, one more CIDR: resolved addresses stay allowed.
      await manager.update(id, { mode: 'allowlist', allow: ['*.wild.test', 'allowed.test', '203.0.113.11'] });
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.11/')).toBe('internet-11');
      // Different names: what was resolved under the old list is forgotten.
      await manager.update(id, { mode: 'allowlist', allow: ['other.test'] });
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
      expect(await resolveFrom(nsOf(id), GATEWAY, 'allowed.test')).toBe('ERR ENOTFOUND');
      expect(await fetchFrom(nsOf(id), 'http://other.test/')).toBe('internet-11');
      await manager.teardown(id);
    });

    it('a CIDR: reachable without DNS; a domain resolving to a private address stays blocked', async () => {
      const id = newId();
      await manager.setup(id, { mode: 'allowlist', allow: ['203.0.113.11/32', 'private.test'] });
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.11/')).toBe('internet-11');
      expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
      expect(await resolveFrom(nsOf(id), GATEWAY, 'private.test')).toBe('OK 10.203.0.10');
      expect(await fetchFrom(nsOf(id), 'http://10.203.0.10/')).toBeNull();
      await manager.teardown(id);
    });

    it('explicit private CIDRs are allowed; metadata and the host never', async () => {
      const id = newId();
      await manager.setup(id, {
        mode: 'allowlist',
        allow: ['10.203.0.10/32', '169.254.169.254/32', `${HOST_PEER}/32`],
      });
      expect(await fetchFrom(nsOf(id), 'http://10.203.0.10/')).toBe('private');
      expect(await fetchFrom(nsOf(id), 'http://169.254.169.254/')).toBeNull();
      expect(await fetchFrom(nsOf(id), `http://${HOST_PEER}:${HOST_PORT}/`)).toBeNull();
      await manager.teardown(id);
    });

    it('rejects malformed entries with INVALID_ARGUMENT', async () => {
      const error = await manager
        .setup(newId(), { mode: 'allowlist', allow: ['not a domain'] })
        .catch((e) => e);
      expect(isRuntimeError(error, 'INVALID_ARGUMENT')).toBe(true);
      const v6 = await manager
        .setup(newId(), { mode: 'allowlist', allow: ['2001:db8::/32'] })
        .catch((e) => e);
      expect(isRuntimeError(v6, 'INVALID_ARGUMENT')).toBe(true);
    });
  });

  it('unknown ids: update and counters throw SANDBOX_NOT_FOUND; teardown is a no-op', async () => {
    const update = await manager.update('missing', { mode: 'none' }).catch((e) => e);
    expect(isRuntimeError(update, 'SANDBOX_NOT_FOUND')).toBe(true);
    const counters = await manager.counters('missing').catch((e) => e);
    expect(isRuntimeError(counters, 'SANDBOX_NOT_FOUND')).toBe(true);
    await manager.teardown('missing');
  });

  it('a restarted manager recovers leases, rules and DNS policy', async () => {
    const id = newId();
    const before = await manager.setup(id, { mode: 'allowlist', allow: ['allowed.test'] });
    await manager.close();
    manager = makeManager();
    await manager.init();
    expect(await manager.list()).toContain(id);
    const again = await manager.setup(id, { mode: 'allowlist', allow: ['allowed.test'] });
    expect(again.address).toBe(before.address);
    expect(await resolveFrom(nsOf(id), GATEWAY, 'other.test')).toBe('ERR ENOTFOUND');
    expect(await fetchFrom(nsOf(id), 'http://allowed.test/')).toBe('internet-10');
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.11/')).toBeNull();
    await manager.teardown(id);
  });

  it('after a reboot (netns and nft gone) init releases the stale lease and rebuilds the tables', async () => {
    const id = newId();
    const lost = await manager.setup(id, { mode: 'internet' });
    await manager.close();
    await must('ip', ['netns', 'del', nsOf(id)]);
    await must('nft', ['delete', 'table', 'inet', TABLE]);
    await must('nft', ['delete', 'table', 'bridge', TABLE]);
    manager = makeManager();
    await manager.init();
    expect(await manager.list()).not.toContain(id);
    const update = await manager.update(id, { mode: 'none' }).catch((e) => e);
    expect(isRuntimeError(update, 'SANDBOX_NOT_FOUND')).toBe(true);
    const fresh = newId();
    const network = await manager.setup(fresh, { mode: 'internet' });
    expect(network.address).toBe(lost.address);
    expect(await fetchFrom(nsOf(fresh), 'http://203.0.113.10/')).toBe('internet-10');
    expect(await fetchFrom(nsOf(fresh), 'http://169.254.169.254/')).toBeNull();
  });

  it('TCP DNS follows the same policy', async () => {
    const id = newId();
    await manager.setup(id, { mode: 'none' });
    expect(await tcpQueryFrom(nsOf(id), GATEWAY, 'allowed.test')).toBe('rcode=5 answers=0');
    await manager.update(id, { mode: 'internet' });
    expect(await tcpQueryFrom(nsOf(id), GATEWAY, 'other.test')).toBe('rcode=0 answers=1');
    await manager.teardown(id);
  });

  it('teardown leaves no netns, veth, nft chain, set or element', async () => {
    for (const id of await manager.list()) await manager.teardown(id);
    await manager.teardown('never-existed');
    expect(await manager.list()).toEqual([]);
    expect((await must('ip', ['netns', 'list'])).includes(NETNS_PREFIX)).toBe(false);
    expect(await must('ip', ['-o', 'link'])).not.toMatch(/ ct-[0-9a-f]{10}[@:]/);
    const inet = await must('nft', ['list', 'table', 'inet', TABLE]);
    expect(inet).not.toMatch(/sb_|dns_|cidr_/);
    expect(inet).not.toMatch(/100\.101\.\d+\.\d+ : jump/);
    const bridge = await must('nft', ['list', 'table', 'bridge', TABLE]);
    expect(bridge).not.toMatch(/"ct-[0-9a-f]{10}"/);
    expect(await sh('ls', ['/etc/netns'])).not.toContain(NETNS_PREFIX);
  });

  it('no sandbox packet ever tried to leave through a real interface (the guard never fired)', async () => {
    const guard = await must('nft', ['list', 'table', 'inet', GUARD_TABLE]);
    expect(guard).toMatch(/counter packets 0 bytes 0 drop/);
  });
});

/** One keep-alive HTTP connection to the internet host; one request per stdin line. */
const KEEPALIVE_CLIENT = `
const socket = require('node:net').connect({ host: '203.0.113.10', port: 80 }, () => console.log('connected'));
let responses = 0;
socket.on('data', (d) => { if (d.toString().includes('internet-10')) console.log('response ' + ++responses); });
socket.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
process.stdin.on('data', () => socket.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
setTimeout(() => process.exit(0), 10000);
`;

/** Lines a child prints, with a wait-for-line helper bounded by a deadline. */
function collectLines(child: ChildProcess) {
  const seen: string[] = [];
  const waiters: (() => void)[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    seen.push(...parts);
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    seen,
    waitFor(prefix: string, timeoutMs = 3_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const check = () => {
          if (seen.some((line) => line.startsWith(prefix))) return resolve();
          if (Date.now() >= deadline) return reject(new Error(`no "${prefix}" in ${JSON.stringify(seen)}`));
          waiters.push(check);
          setTimeout(check, Math.max(0, deadline - Date.now()));
        };
        check();
      });
    },
  };
}

async function keyOf(id: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(`${NETNS_PREFIX}${id}`).digest('hex').slice(0, 10);
}
