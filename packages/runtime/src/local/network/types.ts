import type { NetworkPolicy } from '../../interface.js';

/** How a sandbox's processes join its network. */
export interface SandboxNetwork {
  /** Bind-mounted network namespace to enter (setns) when starting the sandbox's processes. */
  netnsPath: string;
  /** The sandbox's IPv4 address on eth0. */
  address: string;
  /** Default gateway (the bridge address). */
  gateway: string;
  /** The resolver the sandbox must use (the forwarder on the bridge address, port 53). */
  dnsServer: string;
  /** A resolv.conf naming `dnsServer`, to bind-mount over the sandbox's /etc/resolv.conf. */
  resolvConfPath: string;
}

/** Per-sandbox network namespaces, egress policy and DNS for the local runtime. */
export interface NetworkManager {
  /** Idempotent host set-up (bridge, nft tables, sysctls, DNS forwarder); recovers state after a restart. */
  init(): Promise<void>;
  /** Create (or repair) the sandbox's netns, veth and rules; the policy is enforced when it resolves. */
  setup(sandboxId: string, policy: NetworkPolicy): Promise<SandboxNetwork>;
  /** Replace the policy; enforced for new connections (and all traffic for `none`) before it resolves. */
  update(sandboxId: string, policy: NetworkPolicy): Promise<void>;
  /** Remove the netns, veth, nft chain/sets/elements and address lease. Idempotent. */
  teardown(sandboxId: string): Promise<void>;
  /** Bytes received and sent by the sandbox (its own perspective). */
  counters(sandboxId: string): Promise<{ rxBytes: number; txBytes: number }>;
  /** Ids of sandboxes that have a netns, for reconciliation. */
  list(): Promise<string[]>;
  /** The resolv.conf every sandbox should see as /etc/resolv.conf. */
  resolvConfPath(sandboxId: string): string;
  /** Stop the DNS forwarder; namespaces and rules stay in the kernel. */
  close(): Promise<void>;
}

export interface NetworkManagerOptions {
  /** Directory for the lease file and the sandbox resolv.conf. */
  stateDir: string;
  /** Host bridge name (≤ 15 chars). Default `corral0`. */
  bridge?: string;
  /** Sandbox subnet; the bridge takes the first host address. Default 100.100.0.0/16. */
  subnet?: string;
  /** Upstream resolvers (`ip`, `ip:port`, `[ip6]:port`). Default: the host's /etc/resolv.conf nameservers. */
  upstreamDns?: string[];
  /** Name of the `inet` and `bridge` nft tables. Default `corral`. */
  tableName?: string;
  /** Network namespaces are named `<netnsPrefix><sandboxId>`. Default `corral-`. */
  netnsPrefix?: string;
  /** Host-side veths are named `<vethPrefix><10 hex>` (prefix ≤ 5 chars). Default `cr-`. */
  vethPrefix?: string;
  /**
   * Network slots (netns + veth + address, fail-closed) kept ready so a setup() only claims one:
   * one nft transaction instead of several `ip` processes. Default 0 (each setup makes its own).
   */
  poolSize?: number;
  /** Also write /etc/netns/<netns>/resolv.conf so `ip netns exec` sees the forwarder. Default true. */
  netnsEtc?: boolean;
}
