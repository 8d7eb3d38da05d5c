import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../../errors.js';
import { SANDBOX_ID_PATTERN } from '../../shared/ids.js';
import {
  allocateAddress,
  formatIpv4,
  type Ipv4Cidr,
  type Lease,
  loadState,
  type NetworkState,
  parseCidr,
  saveState,
} from './addresses.js';
import { type DnsForwarder, type DnsVerdict, parseUpstream, startDnsForwarder } from './dns-forwarder.js';
import type { AnswerAddress, DnsQuery } from './dns-wire.js';
import {
  enableForwarding,
  ensureBridge,
  ensureSandboxLink,
  hostAddresses,
  listNamespaces,
  NETNS_DIR,
  namespaceAddress,
  namespaceExists,
  removeSandboxLink,
  type SandboxLink,
  sandboxLinkIntact,
  vethCounters,
} from './links.js';
import {
  applyNft,
  baseRuleset,
  type NftContext,
  type NftSandbox,
  readInventory,
  resolvedElements,
  sandboxRemoval,
  sandboxRuleset,
  sweepRuleset,
} from './nft.js';
import { type CompiledPolicy, compilePolicy, domainAllowed } from './policy.js';
import {
  claimedSlotOf,
  createSlotPool,
  linkSlotName,
  slotNetns,
  sweepSlots,
  unlinkSlotName,
} from './pool.js';
import type { NetworkManager, NetworkManagerOptions } from './types.js';

interface Active {
  id: string;
  key: string;
  policy: CompiledPolicy;
  /** Bumped on every policy change, so a DNS answer for an old policy is not added to the new one. */
  generation: number;
  /** Resolved address → when its nft element expires (ms since epoch). */
  resolved: Map<string, number>;
}

const MIN_RESOLVED_SECONDS = 60;
const MAX_RESOLVED_SECONDS = 7 * 86_400;

async function defaultUpstreams(): Promise<string[]> {
  try {
    const text = await readFile('/etc/resolv.conf', 'utf8');
    return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((match) => match[1]!);
  } catch {
    return [];
  }
}

function requireOption(condition: boolean, message: string): void {
  if (!condition) throw new RuntimeError('INVALID_ARGUMENT', message);
}

/** Build the local runtime's network manager; nothing touches the host until `init()`. */
export function createNetworkManager(options: NetworkManagerOptions): NetworkManager {
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

  let state: NetworkState | null = null;
  const poolSize = options.poolSize ?? 0;
  requireOption(Number.isInteger(poolSize) && poolSize >= 0 && poolSize <= 64, `bad pool size: ${poolSize}`);
  const pool =
    poolSize > 0
      ? createSlotPool({
          size: poolSize,
          allocate: (held) => allocateAddress(net, [...usedAddresses(ready()), ...held]),
          make: (slot) =>
            ensureSandboxLink({
              netns: slotNetns(netnsPrefix, slot.key),
              veth: `${vethPrefix}${slot.key}`,
              bridge,
              address: slot.address,
              prefix: net.prefix,
              gateway,
            }),
          remove: (slot) => removeSandboxLink(slotNetns(netnsPrefix, slot.key), `${vethPrefix}${slot.key}`),
        })
      : null;
  const byAddress = new Map<string, Active>();
  let forwarder: DnsForwarder | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  /** Run `task` after every earlier one: state, links and nft change one step at a time. */
  function serial<T>(task: () => Promise<T>): Promise<T> {
    const result = queue.then(task);
    queue = result.catch(() => {});
    return result;
  }

  const keyOf = (id: string) => createHash('sha256').update(`${netnsPrefix}${id}`).digest('hex').slice(0, 10);
  const netnsOf = (id: string) => `${netnsPrefix}${id}`;
  /** A sandbox on a pool slot is keyed (veth, nft chain) by the slot; otherwise by its id. */
  const keyFor = (id: string, slot?: string) => slot ?? keyOf(id);
  const sandboxOf = (id: string, address: string, slot?: string): NftSandbox => ({
    key: keyFor(id, slot),
    address,
    veth: `${vethPrefix}${keyFor(id, slot)}`,
  });

  function linkOf(id: string, address: string, slot?: string): SandboxLink {
    const key = keyFor(id, slot);
    return {
      netns: slot ? slotNetns(netnsPrefix, slot) : netnsOf(id),
      veth: `${vethPrefix}${key}`,
      bridge,
      address,
      prefix: net.prefix,
      gateway,
    };
  }

  function checkId(id: string): void {
    if (typeof id !== 'string' || !SANDBOX_ID_PATTERN.test(id)) {
      throw new RuntimeError('INVALID_ARGUMENT', `invalid sandbox id: ${String(id)}`, { id });
    }
  }

  function ready(): NetworkState {
    if (!state) throw new RuntimeError('INVALID_STATE', 'network manager: init() has not run');
    return state;
  }

  function lease(id: string): Lease {
    const found = ready().leases[id];
    if (!found) throw new RuntimeError('SANDBOX_NOT_FOUND', `no network for sandbox ${id}`, { id });
    return found;
  }

  function activate(id: string, entry: Lease, policy: CompiledPolicy): void {
    const previous = byAddress.get(entry.address);
    byAddress.set(entry.address, {
      id,
      key: keyFor(id, entry.slot),
      policy,
      generation: (previous?.generation ?? 0) + 1,
      resolved: new Map(),
    });
  }

  async function writeNetnsEtc(id: string): Promise<void> {
    if (options.netnsEtc === false) return;
    const dir = join('/etc/netns', netnsOf(id));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'resolv.conf'), `nameserver ${gateway}\n`);
  }

  async function applySandbox(
    id: string,
    entry: Lease,
    policy: CompiledPolicy,
    flushResolved: boolean,
    freshSlot = false,
  ) {
    const sandbox = sandboxOf(id, entry.address, entry.slot);
    const slotName = entry.slot ? slotNetns(netnsPrefix, entry.slot) : null;
    // The rules name the veth as a string, so they need not wait for the link; each step is a
    // spawned process (10–20 ms on a loaded box), so they run side by side.
    const steps = await Promise.allSettled([
      // A slot just taken from the pool is known whole; anything else is created or repaired.
      freshSlot ? Promise.resolve() : ensureSandboxLink(linkOf(id, entry.address, entry.slot)),
      slotName ? linkSlotName(netnsOf(id), slotName) : Promise.resolve(),
      applyNft(sandboxRuleset(ctx, sandbox, policy, flushResolved)),
      writeNetnsEtc(id),
    ]);
    for (const step of steps) if (step.status === 'rejected') throw step.reason;
  }

  async function removeSandbox(id: string, address: string | null, slot?: string): Promise<void> {
    const sandbox = sandboxOf(id, address ?? '0.0.0.0', slot);
    await unlinkSlotName(netnsOf(id));
    await removeSandboxLink(slot ? slotNetns(netnsPrefix, slot) : netnsOf(id), sandbox.veth);
    if (address) await applyNft(sandboxRemoval(ctx, sandbox));
    await rm(join('/etc/netns', netnsOf(id)), { recursive: true, force: true });
  }

  /** Delete nft pieces that no lease accounts for (a crash between steps, a lost state file). */
  async function sweepNft(current: NetworkState): Promise<void> {
    const wanted = new Map(
      Object.entries(current.leases).map(([id, entry]) => [keyFor(id, entry.slot), entry.address]),
    );
    const script = sweepRuleset(ctx, await readInventory(ctx), wanted);
    if (script) await applyNft(script);
  }

  async function startForwarder(): Promise<void> {
    if (forwarder) return;
    const upstreams = (options.upstreamDns ?? (await defaultUpstreams()))
      .map(parseUpstream)
      .filter((upstream) => upstream.host !== gateway);
    try {
      forwarder = await startDnsForwarder({ host: gateway, port: 53, upstreams, decide });
    } catch (err) {
      throw new RuntimeError(
        'INTERNAL',
        `cannot listen for DNS on ${gateway}:53 (another resolver bound to 0.0.0.0:53?)`,
        { address: gateway },
        { cause: err },
      );
    }
  }

  function decide(clientAddress: string, query: DnsQuery): DnsVerdict {
    const active = byAddress.get(clientAddress);
    if (!active || active.policy.mode === 'none') return { action: 'refuse' };
    if (active.policy.mode === 'internet') return { action: 'forward' };
    if (!domainAllowed(query.name, active.policy.domains)) return { action: 'nxdomain' };
    const generation = active.generation;
    return { action: 'forward', onAnswer: (answers) => allowResolved(clientAddress, generation, answers) };
  }

  /** Put the answered addresses into the sandbox's nft set (timeout ≥ TTL) before it sees them. */
  function allowResolved(clientAddress: string, generation: number, answers: AnswerAddress[]): Promise<void> {
    const now = Date.now();
    const active = byAddress.get(clientAddress);
    if (!active || active.generation !== generation) return Promise.reject(new Error('policy changed'));
    const entries = answers
      .map((answer) => ({
        address: answer.address,
        timeoutSeconds: Math.min(
          Math.max(answer.ttlSeconds, MIN_RESOLVED_SECONDS) + 30,
          MAX_RESOLVED_SECONDS,
        ),
        ttlSeconds: answer.ttlSeconds,
      }))
      .filter((entry) => (active.resolved.get(entry.address) ?? 0) < now + (entry.ttlSeconds + 15) * 1000);
    if (entries.length === 0) return Promise.resolve();
    return serial(async () => {
      const current = byAddress.get(clientAddress);
      if (!current || current.generation !== generation) throw new Error('policy changed');
      await applyNft(resolvedElements(ctx, current.key, entries));
      for (const entry of entries) current.resolved.set(entry.address, now + entry.timeoutSeconds * 1000);
    });
  }

  return {
    init: () =>
      serial(async () => {
        await enableForwarding();
        await ensureBridge(bridge, gateway, net.prefix);
        await mkdir(options.stateDir, { recursive: true });
        await writeFile(resolvConf, `nameserver ${gateway}\n`);
        // First, so that everything below may refer to the shared sets and chains.
        await applyNft(baseRuleset(ctx, await hostAddresses()));
        const current = await loadState(statePath);
        const namespaces = new Set(await listNamespaces(netnsPrefix));
        // A lease whose netns is gone (reboot, crash before creation) is released.
        for (const [id, entry] of Object.entries(current.leases)) {
          // A claimed slot's name is a symlink: it counts only when its slot is still there.
          if (!namespaces.has(netnsOf(id)) || !namespaceExists(netnsOf(id))) {
            await removeSandbox(id, entry.address, entry.slot);
            delete current.leases[id];
          }
        }
        // A netns without a lease (lost state file) is adopted with policy `none` — the driver's
        // reconciliation sets the real policy — or removed when its address is unusable.
        for (const netns of namespaces) {
          const id = netns.slice(netnsPrefix.length);
          if (!SANDBOX_ID_PATTERN.test(id) || current.leases[id]) continue;
          const address = await namespaceAddress(netns);
          const value = address ? parseCidr(address) : null;
          const used = new Set(Object.values(current.leases).map((entry) => entry.address));
          if (
            address &&
            value &&
            value.network !== net.network + 1 &&
            !used.has(address) &&
            inSubnet(value.network)
          ) {
            const slot = await claimedSlotOf(netnsPrefix, netns);
            current.leases[id] = { address, policy: { mode: 'none' }, ...(slot ? { slot } : {}) };
          } else {
            await removeSandbox(id, null);
          }
        }
        await saveState(statePath, current);
        byAddress.clear();
        // Repair only what is broken, then re-assert every sandbox's rules in one transaction.
        const scripts: string[] = [];
        for (const [id, entry] of Object.entries(current.leases)) {
          const policy = compilePolicy(entry.policy);
          const link = linkOf(id, entry.address, entry.slot);
          if (!(await sandboxLinkIntact(link))) await ensureSandboxLink(link);
          await writeNetnsEtc(id);
          scripts.push(sandboxRuleset(ctx, sandboxOf(id, entry.address, entry.slot), policy, false));
          activate(id, entry, policy);
        }
        if (scripts.length > 0) await applyNft(scripts.join(''));
        await sweepNft(current);
        // Unclaimed slots of an earlier run are not trusted: remove them, make fresh ones.
        const claimed = Object.values(current.leases).flatMap((entry) => (entry.slot ? [entry.slot] : []));
        await sweepSlots(netnsPrefix, vethPrefix, new Set(claimed));
        state = current;
        await startForwarder();
        pool?.refill();
      }),

    setup: async (sandboxId, policy) => {
      checkId(sandboxId);
      const compiled = compilePolicy(policy);
      return serial(async () => {
        const current = ready();
        const existing = current.leases[sandboxId];
        const taken = existing ? null : (pool?.take() ?? null);
        const slot = existing ? existing.slot : taken?.key;
        const entry: Lease = {
          address: existing?.address ?? taken?.address ?? allocateAddress(net, usedAddresses(current)),
          policy,
          ...(slot ? { slot } : {}),
        };
        current.leases[sandboxId] = entry;
        if (taken) pool?.refill();
        try {
          // The lease file and the kernel side are written side by side: init() recovers either
          // half (a lease without its netns is released, a netns without a lease is adopted).
          const steps = await Promise.allSettled([
            saveState(statePath, current),
            applySandbox(sandboxId, entry, compiled, true, taken !== null),
          ]);
          for (const step of steps) if (step.status === 'rejected') throw step.reason;
        } catch (err) {
          // A repair of an existing sandbox keeps what it had (nft transactions are atomic).
          if (existing) {
            current.leases[sandboxId] = existing;
            await saveState(statePath, current).catch(() => {});
            throw err;
          }
          // A new one leaves nothing half-made behind.
          await removeSandbox(sandboxId, entry.address, entry.slot).catch(() => {});
          byAddress.delete(entry.address);
          delete current.leases[sandboxId];
          await saveState(statePath, current).catch(() => {});
          throw err;
        }
        activate(sandboxId, entry, compiled);
        return {
          netnsPath: `${NETNS_DIR}/${netnsOf(sandboxId)}`,
          address: entry.address,
          gateway,
          dnsServer: gateway,
          resolvConfPath: resolvConf,
        };
      });
    },

    update: async (sandboxId, policy) => {
      checkId(sandboxId);
      const compiled = compilePolicy(policy);
      return serial(async () => {
        const entry = lease(sandboxId);
        // Addresses learnt through DNS stay valid while the allowed names do not change (clients
        // cache answers); otherwise they are forgotten with the old policy.
        const active = byAddress.get(entry.address);
        const sameNames =
          active?.policy.mode === 'allowlist' &&
          compiled.mode === 'allowlist' &&
          [...active.policy.domains].sort().join() === [...compiled.domains].sort().join();
        if (sameNames) {
          active.policy = compiled;
        } else {
          // Stop answering DNS under the old policy before the rules change.
          activate(sandboxId, entry, compiled);
        }
        await applyNft(
          sandboxRuleset(ctx, sandboxOf(sandboxId, entry.address, entry.slot), compiled, !sameNames),
        );
        entry.policy = policy;
        await saveState(statePath, ready());
      });
    },

    teardown: async (sandboxId) => {
      checkId(sandboxId);
      return serial(async () => {
        const current = ready();
        const entry = current.leases[sandboxId];
        await removeSandbox(sandboxId, entry?.address ?? null, entry?.slot);
        if (entry) {
          byAddress.delete(entry.address);
          delete current.leases[sandboxId];
          await saveState(statePath, current);
        }
      });
    },

    counters: async (sandboxId) => {
      checkId(sandboxId);
      const entry = lease(sandboxId);
      const host = await vethCounters(sandboxOf(sandboxId, '', entry.slot).veth).catch((err: unknown) => {
        throw new RuntimeError(
          'INTERNAL',
          `network counters of sandbox ${sandboxId} are unavailable`,
          {},
          { cause: err },
        );
      });
      // The host side receives what the sandbox sends.
      return { rxBytes: host.txBytes, txBytes: host.rxBytes };
    },

    list: async () =>
      (await listNamespaces(netnsPrefix))
        .map((netns) => netns.slice(netnsPrefix.length))
        .filter((id) => SANDBOX_ID_PATTERN.test(id)),

    resolvConfPath: () => resolvConf,

    close: () =>
      serial(async () => {
        await forwarder?.close();
        forwarder = null;
        await pool?.drain();
      }),
  };

  function inSubnet(address: number): boolean {
    return address > net.network && address < net.network + 2 ** (32 - net.prefix) - 1;
  }

  function usedAddresses(current: NetworkState): string[] {
    return [...Object.values(current.leases).map((entry) => entry.address), ...(pool?.addresses() ?? [])];
  }
}
