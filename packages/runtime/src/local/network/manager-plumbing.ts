import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lease, NetworkState } from './addresses.js';
import { ensureSandboxLink, removeSandboxLink, type SandboxLink } from './links.js';
import type { ManagerConfig } from './manager-config.js';
import {
  applyNft,
  type NftSandbox,
  readInventory,
  sandboxRemoval,
  sandboxRuleset,
  sweepRuleset,
} from './nft.js';
import type { CompiledPolicy } from './policy.js';
import { linkSlotName, slotNetns, unlinkSlotName } from './pool.js';
import type { NetworkManagerOptions } from './types.js';

/** One sandbox's names (netns, veth, nft key) and its kernel side: link, rules, /etc/netns. */
export interface SandboxPlumbing {
  netnsOf(id: string): string;
  /** A sandbox on a pool slot is keyed (veth, nft chain) by the slot; otherwise by its id. */
  keyFor(id: string, slot?: string): string;
  sandboxOf(id: string, address: string, slot?: string): NftSandbox;
  linkOf(id: string, address: string, slot?: string): SandboxLink;
  writeNetnsEtc(id: string): Promise<void>;
  applySandbox(
    id: string,
    entry: Lease,
    policy: CompiledPolicy,
    flushResolved: boolean,
    freshSlot?: boolean,
  ): Promise<void>;
  removeSandbox(id: string, address: string | null, slot?: string): Promise<void>;
  /** Delete nft pieces that no lease accounts for (a crash between steps, a lost state file). */
  sweepNft(current: NetworkState): Promise<void>;
}

/** Build the per-sandbox plumbing of a network manager; `options.netnsEtc: false` skips /etc/netns. */
export function createSandboxPlumbing(
  config: ManagerConfig,
  options: NetworkManagerOptions,
): SandboxPlumbing {
  const { bridge, netnsPrefix, vethPrefix, net, gateway, ctx } = config;

  const keyOf = (id: string) => createHash('sha256').update(`${netnsPrefix}${id}`).digest('hex').slice(0, 10);
  const netnsOf = (id: string) => `${netnsPrefix}${id}`;
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

  async function sweepNft(current: NetworkState): Promise<void> {
    const wanted = new Map(
      Object.entries(current.leases).map(([id, entry]) => [keyFor(id, entry.slot), entry.address]),
    );
    const script = sweepRuleset(ctx, await readInventory(ctx), wanted);
    if (script) await applyNft(script);
  }

  return { netnsOf, keyFor, sandboxOf, linkOf, writeNetnsEtc, applySandbox, removeSandbox, sweepNft };
}
