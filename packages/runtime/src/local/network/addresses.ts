import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuntimeError } from '../../errors.js';
import type { NetworkPolicy } from '../../interface.js';

/** An IPv4 network: `network` is the masked address as an unsigned 32-bit integer. */
export interface Ipv4Cidr {
  network: number;
  prefix: number;
}

const IPV4_PATTERN = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The address as an unsigned 32-bit integer, or null when `text` is not dotted-quad IPv4. */
export function parseIpv4(text: string): number | null {
  const match = IPV4_PATTERN.exec(text);
  if (!match) return null;
  let value = 0;
  for (const part of match.slice(1)) {
    const octet = Number(part);
    if (octet > 255 || (part.length > 1 && part.startsWith('0'))) return null;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `a.b.c.d/n` or a bare address (as /32); host bits are cleared. Null when not IPv4. */
export function parseCidr(text: string): Ipv4Cidr | null {
  const [addressText, prefixText, ...rest] = text.split('/');
  if (addressText === undefined || rest.length > 0) return null;
  const address = parseIpv4(addressText);
  if (address === null) return null;
  const prefix = prefixText === undefined ? 32 : /^\d{1,2}$/.test(prefixText) ? Number(prefixText) : -1;
  if (prefix < 0 || prefix > 32) return null;
  return { network: (address & maskOf(prefix)) >>> 0, prefix };
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return cidr.prefix === 32 ? formatIpv4(cidr.network) : `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Ipv4Cidr, address: number): boolean {
  return (address & maskOf(cidr.prefix)) >>> 0 === cidr.network;
}

/** One sandbox's persisted network facts. */
export interface Lease {
  address: string;
  policy: NetworkPolicy;
  /** Key of the pool slot the sandbox claimed (its netns is then a symlink to the slot's). */
  slot?: string;
}

/** What survives a control-plane restart (the netns, links and nft rules live in the kernel). */
export interface NetworkState {
  version: 1;
  leases: Record<string, Lease>;
}

export async function loadState(path: string): Promise<NetworkState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, leases: {} };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as NetworkState;
    if (parsed.version !== 1 || typeof parsed.leases !== 'object' || parsed.leases === null)
      throw new Error('shape');
    return parsed;
  } catch (err) {
    throw new RuntimeError('INTERNAL', `network state file ${path} is corrupt`, { path }, { cause: err });
  }
}

/** Write the state atomically: a temp file, fsync, then rename over the old one. */
export async function saveState(path: string, state: NetworkState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

/**
 * The lowest free host address of `subnet`, skipping the network address, the bridge (first
 * host) and the broadcast address. Throws when the subnet is full.
 */
export function allocateAddress(subnet: Ipv4Cidr, used: Iterable<string>): string {
  const taken = new Set<number>();
  for (const text of used) {
    const value = parseIpv4(text);
    if (value !== null) taken.add(value);
  }
  const size = 2 ** (32 - subnet.prefix);
  for (let offset = 2; offset < size - 1; offset++) {
    const candidate = subnet.network + offset;
    if (!taken.has(candidate)) return formatIpv4(candidate);
  }
  throw new RuntimeError('INTERNAL', `sandbox subnet ${formatCidr(subnet)} has no free address`);
}
