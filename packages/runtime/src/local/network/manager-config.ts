import { join } from 'node:path';
import { RuntimeError } from '../../errors.js';
import { formatIpv4, type Ipv4Cidr, parseCidr } from './addresses.js';
import type { NftContext } from './nft.js';
import type { NetworkManagerOptions } from './types.js';

/** The network manager's options with their defaults, checked, and what follows from them. */
export interface ManagerConfig {
  bridge: string;
  netnsPrefix: string;
  vethPrefix: string;
  net: Ipv4Cidr;
  /** The bridge's address: the sandboxes' gateway and DNS server. */
  gateway: string;
  statePath: string;
  resolvConf: string;
  ctx: NftContext;
  poolSize: number;
}

function requireOption(condition: boolean, message: string): void {
  if (!condition) throw new RuntimeError('INVALID_ARGUMENT', message);
}

/** Apply the defaults and check every option (INVALID_ARGUMENT naming the bad one). */
export function resolveManagerConfig(options: NetworkManagerOptions): ManagerConfig {
  const bridge = options.bridge ?? 'corral0';
  const tableName = options.tableName ?? 'corral';
  const netnsPrefix = options.netnsPrefix ?? 'corral-';
  const vethPrefix = options.vethPrefix ?? 'cr-';
  const subnet: Ipv4Cidr | null = parseCidr(options.subnet ?? '100.100.0.0/16');
  requireOption(/^[A-Za-z0-9_.-]{1,15}$/.test(bridge), `bad bridge name: ${bridge}`);
  requireOption(/^[A-Za-z0-9_-]{1,5}$/.test(vethPrefix), `bad veth prefix: ${vethPrefix}`);
  requireOption(/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(tableName), `bad nft table name: ${tableName}`);
  requireOption(/^[A-Za-z0-9_.-]{0,32}$/.test(netnsPrefix), `bad netns prefix: ${netnsPrefix}`);
  requireOption(
    subnet !== null && subnet.prefix >= 8 && subnet.prefix <= 28,
    `bad subnet: ${options.subnet}`,
  );
  const net = subnet!;
  const gateway = formatIpv4(net.network + 1);
  const statePath = join(options.stateDir, 'network.json');
  const resolvConf = join(options.stateDir, 'resolv.conf');
  const ctx: NftContext = {
    table: tableName,
    bridge,
    vethPrefix,
    subnet: `${formatIpv4(net.network)}/${net.prefix}`,
    bridgeAddress: gateway,
  };
  const poolSize = options.poolSize ?? 0;
  requireOption(Number.isInteger(poolSize) && poolSize >= 0 && poolSize <= 64, `bad pool size: ${poolSize}`);
  return { bridge, netnsPrefix, vethPrefix, net, gateway, statePath, resolvConf, ctx, poolSize };
}
