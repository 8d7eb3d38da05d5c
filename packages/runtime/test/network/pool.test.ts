import type { Socket } from 'node:dgram';
import { lstatSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetworkManager, type NetworkManager } from '../../src/local/network/index.js';
import { waitFor } from '../shared/sandbox-shell.js';
import {
  fetchFrom,
  lockTestHosts,
  must,
  sh,
  startTestDns,
  startTestHost,
  stopTestHost,
  type TestHost,
} from './hosts.js';

// Names private to this suite.
const BRIDGE = 'crtpbr0';
const TABLE = 'corral_test_pool';
const GUARD_TABLE = 'corral_test_pool_guard';
const NETNS_PREFIX = 'corralpool-';
const VETH_PREFIX = 'cq-';
const SUBNET = '100.107.0.0/16';
const HOST = { netns: 'crtp-inet', link: 'crtp-inet', address: '203.0.113.10', body: 'internet-10' };

async function namespaces(): Promise<string[]> {
  const list = (await sh('ip', ['netns', 'list'])).stdout.split('\n').map((line) => line.split(' ')[0] ?? '');
  return list.filter((name) => name.startsWith(NETNS_PREFIX));
}
const slots = async () => (await namespaces()).filter((name) => name.includes('.slot-'));
const veths = async () =>
  (await must('ip', ['-o', 'link'])).split('\n').filter((line) => line.includes(` ${VETH_PREFIX}`));

async function removeFixtures(): Promise<void> {
  await stopTestHost(HOST.netns, HOST.link);
  for (const name of await namespaces()) await sh('ip', ['netns', 'del', name]);
  await sh('rm', [
    '-f',
    ...(await sh('ls', ['/run/netns'])).stdout
      .split('\n')
      .filter((n) => n.startsWith(NETNS_PREFIX))
      .map((n) => `/run/netns/${n}`),
  ]);
  for (const table of [`inet ${TABLE}`, `bridge ${TABLE}`, `inet ${GUARD_TABLE}`]) {
    await sh('nft', ['delete', 'table', ...table.split(' ')]);
  }
  await sh('ip', ['link', 'del', BRIDGE]);
}

describe('network manager slot pool (real kernel)', () => {
  let stateDir: string;
  let manager: NetworkManager;
  let dns: { port: number; socket: Socket; tcp: TcpServer };
  let host: TestHost | undefined;
  let release: (() => void) | undefined;
  const id = `pool${process.pid}`;
  const nsOf = (sandboxId: string) => `${NETNS_PREFIX}${sandboxId}`;
  const makeManager = () =>
    createNetworkManager({
      stateDir,
      bridge: BRIDGE,
      subnet: SUBNET,
      tableName: TABLE,
      netnsPrefix: NETNS_PREFIX,
      vethPrefix: VETH_PREFIX,
      upstreamDns: [`127.0.0.1:${dns.port}`],
      poolSize: 2,
    });
  const slotsReady = (count: number) =>
    waitFor(
      `${count} ready slots`,
      async () => ((await slots()).length === count ? true : undefined),
      20_000,
    );

  beforeAll(async () => {
    release = await lockTestHosts();
    await removeFixtures();
    await must('nft', [
      `add table inet ${GUARD_TABLE}; add chain inet ${GUARD_TABLE} guard { type filter hook forward priority -50; }; add rule inet ${GUARD_TABLE} guard iifname "${BRIDGE}" oifname != "crtp-*" counter drop`,
    ]);
    host = await startTestHost(HOST.netns, HOST.link, HOST.address, HOST.body);
    dns = await startTestDns({ 'allowed.test': HOST.address });
    stateDir = await mkdtemp(join(tmpdir(), 'corral-pool-'));
    manager = makeManager();
    await manager.init();
  });

  afterAll(async () => {
    for (const sandboxId of (await manager?.list().catch(() => [])) ?? [])
      await manager.teardown(sandboxId).catch(() => {});
    await manager?.close();
    host?.server.kill('SIGKILL');
    dns?.socket.close();
    dns?.tcp.close();
    await removeFixtures();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    release?.();
  });

  it('init makes the ready slots; an unclaimed slot reaches nothing and is not a sandbox', async () => {
    await slotsReady(2);
    expect(await veths()).toHaveLength(2);
    expect(await manager.list()).toEqual([]);
    const [slot] = await slots();
    expect(await fetchFrom(slot!, 'http://203.0.113.10/')).toBeNull();
    // Its gateway ARP went unanswered (dropped on the bridge); a real slot never sends before
    // its claim, so forget the failed neighbour entry rather than let it delay the next test.
    await must('ip', ['-n', slot!, 'neigh', 'flush', 'all']);
  });

  it('setup claims a slot (the sandbox name points at it), enforces the policy, and the pool refills', async () => {
    const network = await manager.setup(id, { mode: 'internet' });
    expect(network.netnsPath).toBe(`/run/netns/${nsOf(id)}`);
    expect(lstatSync(network.netnsPath).isSymbolicLink()).toBe(true);
    expect(readlinkSync(network.netnsPath)).toMatch(/\.slot-[0-9a-f]{10}$/);
    expect(network.address).toMatch(/^100\.107\./);
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
    expect(await fetchFrom(nsOf(id), 'http://allowed.test/')).toBe('internet-10');
    const v6 = await must('ip', [
      'netns',
      'exec',
      nsOf(id),
      'cat',
      '/proc/sys/net/ipv6/conf/eth0/disable_ipv6',
    ]);
    expect(v6.trim()).toBe('1');
    await slotsReady(3); // the claimed one and two ready again
    expect(await manager.list()).toEqual([id]);
    expect((await manager.counters(id)).rxBytes).toBeGreaterThan(0);
    await manager.update(id, { mode: 'none' });
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
    await manager.update(id, { mode: 'internet' });
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
  });

  it('close removes the unclaimed slots; a restart keeps the claimed one and sweeps orphans', async () => {
    await manager.close();
    expect(await slots()).toHaveLength(1);
    // An orphan slot as a crash would leave it (netns + veth, no lease).
    await must('ip', ['netns', 'add', `${NETNS_PREFIX}.slot-0123456789`]);
    manager = makeManager();
    await manager.init();
    expect(await manager.list()).toEqual([id]);
    expect(await namespaces()).not.toContain(`${NETNS_PREFIX}.slot-0123456789`);
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
    await slotsReady(3);
  });

  it('a lost state file: the claimed slot is adopted (policy none) and teardown removes it', async () => {
    await manager.close();
    await rm(join(stateDir, 'network.json'));
    manager = makeManager();
    await manager.init();
    expect(await manager.list()).toEqual([id]);
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBeNull();
    await manager.setup(id, { mode: 'internet' });
    expect(await fetchFrom(nsOf(id), 'http://203.0.113.10/')).toBe('internet-10');
    await manager.teardown(id);
    expect(await manager.list()).toEqual([]);
    await slotsReady(2);
  });

  it('teardown and close leave no netns, veth, nft chain or port element', async () => {
    await manager.close();
    expect(await namespaces()).toEqual([]);
    expect(await veths()).toEqual([]);
    const inet = await must('nft', ['list', 'table', 'inet', TABLE]);
    expect(inet).not.toMatch(/sb_|dns_|cidr_/);
    expect(await must('nft', ['list', 'table', 'bridge', TABLE])).not.toMatch(/"cq-[0-9a-f]{10}"/);
    manager = makeManager();
    await manager.init();
  });

  it('no sandbox packet ever tried to leave through a real interface (the guard never fired)', async () => {
    expect(await must('nft', ['list', 'table', 'inet', GUARD_TABLE])).toMatch(
      /counter packets 0 bytes 0 drop/,
    );
  });
});
