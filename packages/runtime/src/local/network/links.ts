import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { run } from './exec.js';

/** Where `ip netns add` keeps its bind-mounted namespaces. */
export const NETNS_DIR = '/run/netns';

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Turn IPv6 off on a host interface; the policy is IPv4-only, so v6 must not exist. */
async function disableHostIpv6(name: string): Promise<void> {
  const path = `/proc/sys/net/ipv6/conf/${name}/disable_ipv6`;
  if (existsSync(path)) await writeFile(path, '1');
}

/** Enable IPv4 forwarding on the host (idempotent). */
export async function enableForwarding(): Promise<void> {
  const path = '/proc/sys/net/ipv4/ip_forward';
  if ((await readFile(path, 'utf8')).trim() !== '1') await writeFile(path, '1');
}

/** Create the bridge if missing and make sure it holds `address/prefix` and is up. */
export async function ensureBridge(name: string, address: string, prefix: number): Promise<void> {
  if (!linkExists(name)) await run('ip', ['link', 'add', name, 'type', 'bridge']);
  await disableHostIpv6(name);
  // A bridge without a set address takes the lowest of its ports' and changes it as veths come
  // and go, leaving every sandbox with a stale ARP entry for its gateway: fix one (locally
  // administered, derived from the name).
  const mac = `02:${createHash('sha256').update(name).digest('hex').slice(0, 10).match(/../g)!.join(':')}`;
  await run('ip', ['-b', '-'], {
    input: [
      `link set dev ${name} address ${mac}`,
      `addr replace ${address}/${prefix} dev ${name}`,
      `link set dev ${name} up`,
      '',
    ].join('\n'),
  });
}

/** The host's own IPv4 addresses (every interface), for the never-reach set. */
export async function hostAddresses(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'addr', 'show']);
  const links = JSON.parse(stdout) as { addr_info?: { local?: string }[] }[];
  return links.flatMap((link) => (link.addr_info ?? []).map((info) => info.local ?? '')).filter(Boolean);
}

/** Names of existing network namespaces that start with `prefix`. */
export async function listNamespaces(prefix: string): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).filter((name) => name.startsWith(prefix));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export function namespaceExists(netns: string): boolean {
  return existsSync(`${NETNS_DIR}/${netns}`);
}

/** Everything one sandbox's link needs. */
export interface SandboxLink {
  netns: string;
  /** Host-side veth name (≤ 15 chars). */
  veth: string;
  bridge: string;
  address: string;
  prefix: number;
  gateway: string;
}

/**
 * Create (or complete, after a crash half-way) a sandbox's netns and veth: `lo` up, IPv6 off,
 * `eth0` with the address and a default route via the bridge; the host side an isolated port.
 * A new sandbox costs two `ip` processes (each spawn is 10–20 ms on a loaded box); a repair
 * takes the step-by-step path.
 */
export async function ensureSandboxLink(link: SandboxLink): Promise<void> {
  if (!namespaceExists(link.netns) && !linkExists(link.veth)) {
    // The peer is created inside the new netns under its final name.
    await run('ip', ['-b', '-'], {
      input: [
        `netns add ${link.netns}`,
        `link add ${link.veth} type veth peer name eth0 netns ${link.netns}`,
        ...hostPortCommands(link),
        '',
      ].join('\n'),
    });
    await disableHostIpv6(link.veth);
  } else {
    await repairSandboxLink(link);
  }
  // One process inside the netns: IPv6 off (sysctls are per netns), then addresses and route.
  await run(
    'ip',
    [
      'netns',
      'exec',
      link.netns,
      'sh',
      '-c',
      'for f in all default eth0 lo; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done && exec ip -b -',
    ],
    { input: namespaceCommands(link) },
  );
}

function hostPortCommands(link: SandboxLink): string[] {
  return [
    `link set dev ${link.veth} master ${link.bridge}`,
    `link set dev ${link.veth} type bridge_slave isolated on learning on`,
    `link set dev ${link.veth} up`,
  ];
}

function namespaceCommands(link: SandboxLink): string {
  return [
    'link set dev lo up',
    `addr replace ${link.address}/${link.prefix} dev eth0`,
    'link set dev eth0 up',
    `route replace default via ${link.gateway} dev eth0`,
    '',
  ].join('\n');
}

async function repairSandboxLink(link: SandboxLink): Promise<void> {
  if (!namespaceExists(link.netns)) await run('ip', ['netns', 'add', link.netns]);
  const hasEth0 =
    (await run('ip', ['-n', link.netns, 'link', 'show', 'eth0'], { allowFailure: true })).exitCode === 0;
  if (!hasEth0 || !linkExists(link.veth)) {
    // A half-made pair cannot be repaired: start the pair over.
    if (linkExists(link.veth)) await run('ip', ['link', 'del', link.veth]);
    if (hasEth0) await run('ip', ['-n', link.netns, 'link', 'del', 'eth0']);
    await run('ip', ['link', 'add', link.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', link.netns]);
  }
  await disableHostIpv6(link.veth);
  await run('ip', ['-b', '-'], { input: `${hostPortCommands(link).join('\n')}\n` });
}

/** True when the netns exists and the host veth is attached to the bridge (its peer dies with it). */
export async function sandboxLinkIntact(link: SandboxLink): Promise<boolean> {
  if (!namespaceExists(link.netns) || !linkExists(link.veth)) return false;
  try {
    return basename(await readlink(`/sys/class/net/${link.veth}/master`)) === link.bridge;
  } catch {
    return false;
  }
}

/** Delete a sandbox's veth and netns; succeeds when they are already gone. */
export async function removeSandboxLink(netns: string, veth: string): Promise<void> {
  // Deleting one end deletes the pair, even if a process still holds the netns open.
  if (linkExists(veth)) await run('ip', ['link', 'del', veth], { allowFailure: true });
  if (namespaceExists(netns)) await run('ip', ['netns', 'del', netns]);
}

/** The address on a netns's eth0, for adopting a namespace whose lease was lost. */
export async function namespaceAddress(netns: string): Promise<string | null> {
  const result = await run('ip', ['-n', netns, '-j', '-4', 'addr', 'show', 'dev', 'eth0'], {
    allowFailure: true,
  });
  if (result.exitCode !== 0) return null;
  const links = JSON.parse(result.stdout || '[]') as { addr_info?: { local?: string }[] }[];
  return links[0]?.addr_info?.[0]?.local ?? null;
}

/** Host-side byte counters of a veth (what the host received = what the sandbox sent). */
export async function vethCounters(veth: string): Promise<{ rxBytes: number; txBytes: number }> {
  const read = async (name: string) =>
    Number((await readFile(`/sys/class/net/${veth}/statistics/${name}`, 'utf8')).trim());
  return { rxBytes: await read('rx_bytes'), txBytes: await read('tx_bytes') };
}
