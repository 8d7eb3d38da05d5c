import { mkdir, writeFile } from 'node:fs/promises';
import { RuntimeError } from '../../errors.js';
import { SANDBOX_ID_PATTERN } from '../../shared/ids.js';
import {
  allocateAddress,
  type Lease,
  loadState,
  type NetworkState,
  parseCidr,
  saveState,
} from './addresses.js';
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
  sandboxLinkIntact,
  vethCounters,
} from './links.js';
import { resolveManagerConfig } from './manager-config.js';
import { type Active, createDnsGate } from './manager-dns.js';
import { createSandboxPlumbing } from './manager-plumbing.js';
import { applyNft, baseRuleset, sandboxRuleset } from './nft.js';
import { type CompiledPolicy, compilePolicy } from './policy.js';
import { claimedSlotOf, createSlotPool, slotNetns, sweepSlots } from './pool.js';
import type { NetworkManager, NetworkManagerOptions } from './types.js';

/** Build the local runtime's network manager; nothing touches the host until `init()`. */
export function createNetworkManager(options: NetworkManagerOptions): NetworkManager {
  const config = resolveManagerConfig(options);
  const { bridge, netnsPrefix, vethPrefix, net, gateway, statePath, resolvConf, ctx, poolSize } = config;
  const { netnsOf, keyFor, sandboxOf, linkOf, writeNetnsEtc, applySandbox, removeSandbox, sweepNft } =
    createSandboxPlumbing(config, options);

  let state: NetworkState | null = null;
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
  let queue: Promise<unknown> = Promise.resolve();

  /** Run `task` after every earlier one: state, links and nft change one step at a time. */
  function serial<T>(task: () => Promise<T>): Promise<T> {
    const result = queue.then(task);
    queue = result.catch(() => {});
    return result;
  }

  const dns = createDnsGate({ gateway, options, ctx, byAddress, serial });

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
        await dns.start();
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
        await dns.close();
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
