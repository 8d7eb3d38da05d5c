import { run } from './exec.js';
import type { CompiledPolicy } from './policy.js';

/** Names and addresses every generated rule depends on. */
export interface NftContext {
  /** Name of both the `inet` and the `bridge` table. */
  table: string;
  bridge: string;
  /** Every sandbox veth's host-side name starts with this (matched as `prefix*`). */
  vethPrefix: string;
  /** The sandbox subnet, e.g. 100.100.0.0/16. */
  subnet: string;
  bridgeAddress: string;
}

/** One sandbox as the rules see it. */
export interface NftSandbox {
  /** Short hash naming its chain and sets. */
  key: string;
  address: string;
  veth: string;
}

/** Destinations no sandbox may reach, whatever its policy (metadata, loopback, other sandboxes…). */
export const NEVER_RANGES = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4'];
/** Destinations an `internet` sandbox may not reach; an allowlist may name them explicitly. */
export const FORBIDDEN_RANGES = ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16'];

/** Refuse loudly (TCP reset, else ICMP) so clients fail at once instead of timing out. */
const REJECT = 'goto deny';

function elements(values: string[]): string {
  return `{ ${values.join(', ')} }`;
}

/**
 * The shared part of the ruleset. Idempotent: re-running it rebuilds the hook chains and the
 * range sets but keeps per-sandbox chains, sets and the verdict map's elements.
 */
export function baseRuleset(ctx: NftContext, hostAddresses: string[]): string {
  const t = `inet ${ctx.table}`;
  const b = `bridge ${ctx.table}`;
  const br = JSON.stringify(ctx.bridge);
  const ports = JSON.stringify(`${ctx.vethPrefix}*`);
  const never = [...NEVER_RANGES, ctx.subnet, ...hostAddresses];
  return [
    `add table ${t}`,
    `add set ${t} never { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${t} never`,
    `add element ${t} never ${elements(never)}`,
    `add set ${t} forbidden { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${t} forbidden`,
    `add element ${t} forbidden ${elements([...FORBIDDEN_RANGES, ...never])}`,
    `add map ${t} sandboxes { type ipv4_addr : verdict; }`,
    `add chain ${t} deny`,
    `flush chain ${t} deny`,
    `add rule ${t} deny meta l4proto tcp reject with tcp reset`,
    `add rule ${t} deny reject with icmpx type admin-prohibited`,
    // Routed traffic from the bridge: each sandbox's chain, chosen by source address.
    `add chain ${t} from_sandbox`,
    `flush chain ${t} from_sandbox`,
    `add rule ${t} from_sandbox meta nfproto ipv6 drop`,
    `add rule ${t} from_sandbox oifname ${br} ${REJECT}`,
    `add rule ${t} from_sandbox ip saddr vmap @sandboxes`,
    `add rule ${t} from_sandbox drop`,
    `add chain ${t} forward_hook { type filter hook forward priority filter; policy accept; }`,
    `flush chain ${t} forward_hook`,
    // The host's uplink may have a smaller MTU than the veths (1500): clamp the MSS to the route's.
    `add rule ${t} forward_hook iifname ${br} tcp flags syn tcp option maxseg size set rt mtu`,
    `add rule ${t} forward_hook oifname ${br} tcp flags syn tcp option maxseg size set rt mtu`,
    `add rule ${t} forward_hook iifname ${br} jump from_sandbox`,
    `add rule ${t} forward_hook oifname ${br} ct state established,related accept`,
    `add rule ${t} forward_hook oifname ${br} drop`,
    // Traffic from the bridge to the host itself: replies and DNS to the forwarder only.
    `add chain ${t} to_host`,
    `flush chain ${t} to_host`,
    `add rule ${t} to_host ct state established,related accept`,
    `add rule ${t} to_host meta nfproto ipv6 drop`,
    `add rule ${t} to_host ip daddr ${ctx.bridgeAddress} meta l4proto { tcp, udp } th dport 53 accept`,
    `add rule ${t} to_host ${REJECT}`,
    `add chain ${t} input_hook { type filter hook input priority filter; policy accept; }`,
    `flush chain ${t} input_hook`,
    `add rule ${t} input_hook iifname ${br} jump to_host`,
    `add chain ${t} nat_hook { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ${t} nat_hook`,
    `add rule ${t} nat_hook ip saddr ${ctx.subnet} oifname != ${br} masquerade`,
    // Layer 2: no frames between sandbox ports, and no spoofed source (IPv4 or ARP) from a port.
    `add table ${b}`,
    `add set ${b} ports { type ifname . ipv4_addr; }`,
    `add chain ${b} prerouting_hook { type filter hook prerouting priority filter; policy accept; }`,
    `flush chain ${b} prerouting_hook`,
    `add rule ${b} prerouting_hook iifname ${ports} ether type != { ip, arp } drop`,
    `add rule ${b} prerouting_hook iifname ${ports} ether type ip iifname . ip saddr != @ports counter drop`,
    `add rule ${b} prerouting_hook iifname ${ports} ether type arp iifname . arp saddr ip != @ports counter drop`,
    `add chain ${b} forward_hook { type filter hook forward priority filter; policy accept; }`,
    `flush chain ${b} forward_hook`,
    `add rule ${b} forward_hook iifname ${ports} oifname ${ports} drop`,
    '',
  ].join('\n');
}

function policyRules(chain: string, t: string, sandbox: NftSandbox, policy: CompiledPolicy): string[] {
  const rule = (text: string) => `add rule ${t} ${chain} ${text}`;
  switch (policy.mode) {
    case 'internet':
      return [rule(`ip daddr @forbidden ${REJECT}`), rule('accept')];
    case 'none':
      // No established/related exception: switching to `none` also cuts open connections.
      return [rule(REJECT)];
    case 'allowlist':
      return [
        rule('ct state established,related accept'),
        rule(`ip daddr @never ${REJECT}`),
        rule(`ip daddr @cidr_${sandbox.key} accept`),
        rule(`ip daddr @forbidden ${REJECT}`),
        rule(`ip daddr @dns_${sandbox.key} accept`),
        rule(REJECT),
      ];
  }
}

/**
 * Create or replace one sandbox's chain and sets and point the verdict map at them, in one
 * transaction. `flushResolved` forgets the addresses learnt through DNS (on a policy change).
 */
export function sandboxRuleset(
  ctx: NftContext,
  sandbox: NftSandbox,
  policy: CompiledPolicy,
  flushResolved: boolean,
): string {
  const t = `inet ${ctx.table}`;
  const chain = `sb_${sandbox.key}`;
  const lines = [
    `add chain ${t} ${chain}`,
    `flush chain ${t} ${chain}`,
    `add set ${t} dns_${sandbox.key} { type ipv4_addr; flags timeout; }`,
    ...(flushResolved ? [`flush set ${t} dns_${sandbox.key}`] : []),
    `add set ${t} cidr_${sandbox.key} { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${t} cidr_${sandbox.key}`,
    ...(policy.cidrs.length > 0 ? [`add element ${t} cidr_${sandbox.key} ${elements(policy.cidrs)}`] : []),
    ...policyRules(chain, t, sandbox, policy),
    // add-delete-add replaces the element whether or not it existed.
    `add element ${t} sandboxes { ${sandbox.address} : jump ${chain} }`,
    `delete element ${t} sandboxes { ${sandbox.address} }`,
    `add element ${t} sandboxes { ${sandbox.address} : jump ${chain} }`,
    `add element bridge ${ctx.table} ports { ${JSON.stringify(sandbox.veth)} . ${sandbox.address} }`,
    '',
  ];
  return lines.join('\n');
}

/** Remove every trace of one sandbox; succeeds whether or not the pieces exist. */
export function sandboxRemoval(ctx: NftContext, sandbox: NftSandbox): string {
  const t = `inet ${ctx.table}`;
  const chain = `sb_${sandbox.key}`;
  const port = `${JSON.stringify(sandbox.veth)} . ${sandbox.address}`;
  return [
    `add table ${t}`,
    `add map ${t} sandboxes { type ipv4_addr : verdict; }`,
    `add table bridge ${ctx.table}`,
    `add set bridge ${ctx.table} ports { type ifname . ipv4_addr; }`,
    `add chain ${t} ${chain}`,
    `add element ${t} sandboxes { ${sandbox.address} : jump ${chain} }`,
    `delete element ${t} sandboxes { ${sandbox.address} }`,
    `flush chain ${t} ${chain}`,
    `delete chain ${t} ${chain}`,
    `add set ${t} dns_${sandbox.key} { type ipv4_addr; flags timeout; }`,
    `delete set ${t} dns_${sandbox.key}`,
    `add set ${t} cidr_${sandbox.key} { type ipv4_addr; flags interval; auto-merge; }`,
    `delete set ${t} cidr_${sandbox.key}`,
    `add element bridge ${ctx.table} ports { ${port} }`,
    `delete element bridge ${ctx.table} ports { ${port} }`,
    '',
  ].join('\n');
}

/** Allow (or re-allow with a fresh timeout) addresses learnt from DNS for one sandbox. */
export function resolvedElements(
  ctx: NftContext,
  key: string,
  entries: { address: string; timeoutSeconds: number }[],
) {
  const set = `inet ${ctx.table} dns_${key}`;
  const plain = entries.map((entry) => entry.address);
  const timed = entries.map((entry) => `${entry.address} timeout ${entry.timeoutSeconds}s`);
  // add-delete-add so an existing element gets the new timeout on any kernel.
  return [
    `add element ${set} ${elements(timed)}`,
    `delete element ${set} ${elements(plain)}`,
    `add element ${set} ${elements(timed)}`,
    '',
  ].join('\n');
}

/** Apply a script as one atomic transaction. */
export async function applyNft(script: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: script });
}

/** What currently exists in the tables: per-sandbox chain keys, map keys and port elements. */
export interface NftInventory {
  keys: Set<string>;
  mapAddresses: string[];
  ports: { veth: string; address: string }[];
}

interface NftJsonObject {
  chain?: { name: string };
  set?: { name: string; elem?: unknown[] };
  map?: { name: string; elem?: unknown[] };
}

/** Read what the tables hold (empty when they do not exist). */
export async function readInventory(ctx: NftContext): Promise<NftInventory> {
  const inventory: NftInventory = { keys: new Set(), mapAddresses: [], ports: [] };
  const inet = await run('nft', ['-j', 'list', 'table', 'inet', ctx.table], { allowFailure: true });
  if (inet.exitCode === 0) {
    const objects = (JSON.parse(inet.stdout) as { nftables: NftJsonObject[] }).nftables;
    for (const object of objects) {
      const name = object.chain?.name ?? object.set?.name;
      const match = name ? /^(?:sb|dns|cidr)_([0-9a-f]+)$/.exec(name) : null;
      if (match) inventory.keys.add(match[1]!);
      if (object.map?.name === 'sandboxes') {
        for (const elem of object.map.elem ?? []) {
          if (Array.isArray(elem) && typeof elem[0] === 'string') inventory.mapAddresses.push(elem[0]);
        }
      }
    }
  }
  const bridge = await run('nft', ['-j', 'list', 'table', 'bridge', ctx.table], { allowFailure: true });
  if (bridge.exitCode === 0) {
    const objects = (JSON.parse(bridge.stdout) as { nftables: NftJsonObject[] }).nftables;
    for (const object of objects) {
      if (object.set?.name !== 'ports') continue;
      for (const elem of object.set.elem ?? []) {
        const concat = (elem as { concat?: unknown[] }).concat;
        if (Array.isArray(concat) && typeof concat[0] === 'string' && typeof concat[1] === 'string') {
          inventory.ports.push({ veth: concat[0], address: concat[1] });
        }
      }
    }
  }
  return inventory;
}

/** A script deleting what `inventory` holds beyond the `wanted` sandboxes (key → address); '' if nothing. */
export function sweepRuleset(ctx: NftContext, inventory: NftInventory, wanted: Map<string, string>): string {
  const t = `inet ${ctx.table}`;
  const addresses = new Set(wanted.values());
  const lines: string[] = [];
  for (const address of inventory.mapAddresses) {
    if (!addresses.has(address)) lines.push(`delete element ${t} sandboxes { ${address} }`);
  }
  for (const key of inventory.keys) {
    if (wanted.has(key)) continue;
    lines.push(
      `add chain ${t} sb_${key}`,
      `flush chain ${t} sb_${key}`,
      `delete chain ${t} sb_${key}`,
      `add set ${t} dns_${key} { type ipv4_addr; flags timeout; }`,
      `delete set ${t} dns_${key}`,
      `add set ${t} cidr_${key} { type ipv4_addr; flags interval; auto-merge; }`,
      `delete set ${t} cidr_${key}`,
    );
  }
  for (const port of inventory.ports) {
    if (wanted.get(port.veth.slice(ctx.vethPrefix.length)) !== port.address) {
      lines.push(
        `delete element bridge ${ctx.table} ports { ${JSON.stringify(port.veth)} . ${port.address} }`,
      );
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
