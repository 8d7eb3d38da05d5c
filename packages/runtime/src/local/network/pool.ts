import { randomBytes } from 'node:crypto';
import { lstat, readlink, rm, symlink } from 'node:fs/promises';
import { listNamespaces, NETNS_DIR, removeSandboxLink } from './links.js';

/**
 * Ready network slots: a netns + veth on the bridge + an address, made ahead of demand so that a
 * create only claims one (a symlink and one nft transaction) instead of spawning `ip` several
 * times. An unclaimed slot has no nft chain and no `ports` element, so the bridge drops all it
 * sends (fail-closed, as policy `none`). Slots are named `<netnsPrefix>.slot-<key>` (a `.` never
 * appears in a sandbox id); a claimed sandbox's `<netnsPrefix><id>` is a symlink to its slot.
 */

/** A slot's netns name marker. */
const SLOT_MARK = '.slot-';

/** One ready slot: its key names the netns, the host veth and (once claimed) the nft chain. */
export interface Slot {
  key: string;
  address: string;
}

export function slotNetns(netnsPrefix: string, key: string): string {
  return `${netnsPrefix}${SLOT_MARK}${key}`;
}

/** The slot key of a netns name, or null when it is not a slot. */
export function slotKeyOf(netnsPrefix: string, netns: string): string | null {
  const match = /^([0-9a-f]{10})$/.exec(netns.slice(`${netnsPrefix}${SLOT_MARK}`.length));
  return netns.startsWith(`${netnsPrefix}${SLOT_MARK}`) && match ? match[1]! : null;
}

/** Point `/run/netns/<name>` at the slot's netns (replacing whatever stale entry is there). */
export async function linkSlotName(name: string, slotName: string): Promise<void> {
  const path = `${NETNS_DIR}/${name}`;
  try {
    await symlink(slotName, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if ((await readlink(path).catch(() => null)) === slotName) return;
    await rm(path, { force: true });
    await symlink(slotName, path);
  }
}

/** The slot key behind `/run/netns/<name>` when it is a claimed slot's symlink, else null. */
export async function claimedSlotOf(netnsPrefix: string, name: string): Promise<string | null> {
  const path = `${NETNS_DIR}/${name}`;
  const info = await lstat(path).catch(() => null);
  if (!info?.isSymbolicLink()) return null;
  return slotKeyOf(netnsPrefix, await readlink(path));
}

/** Remove the `<name>` symlink of a claimed slot (a bind-mounted netns is left alone). */
export async function unlinkSlotName(name: string): Promise<void> {
  const path = `${NETNS_DIR}/${name}`;
  if ((await lstat(path).catch(() => null))?.isSymbolicLink()) await rm(path, { force: true });
}

/** Delete every slot netns (and its veth) whose key is not in `keep`. */
export async function sweepSlots(netnsPrefix: string, vethPrefix: string, keep: Set<string>): Promise<void> {
  for (const netns of await listNamespaces(netnsPrefix)) {
    const key = slotKeyOf(netnsPrefix, netns);
    if (key && !keep.has(key)) await removeSandboxLink(netns, `${vethPrefix}${key}`);
  }
}

export interface SlotPoolOptions {
  size: number;
  /** The lowest free address, given the addresses the pool itself holds. */
  allocate(held: string[]): string;
  make(slot: Slot): Promise<void>;
  remove(slot: Slot): Promise<void>;
}

/** The in-memory pool; its slots live in the kernel and are swept by `init()` after a restart. */
export interface SlotPool {
  take(): Slot | null;
  /** Start making slots in the background until `size` are ready (no-op while already filling). */
  refill(): void;
  /** Addresses held by ready slots and the one being made. */
  addresses(): string[];
  /** Stop refilling, wait for the slot being made, and remove every unclaimed slot. */
  drain(): Promise<void>;
}

export function createSlotPool(options: SlotPoolOptions): SlotPool {
  const ready: Slot[] = [];
  let making: Slot | null = null;
  let filling: Promise<void> | null = null;
  let stopped = false;
  const addresses = () => [...ready, ...(making ? [making] : [])].map((slot) => slot.address);

  async function fill(): Promise<void> {
    while (!stopped && ready.length < options.size) {
      const slot = { key: randomBytes(5).toString('hex'), address: options.allocate(addresses()) };
      making = slot;
      try {
        await options.make(slot);
        ready.push(slot);
      } catch {
        // Creates fall back to making their network inline; the next claim retries the pool.
        await options.remove(slot).catch(() => {});
        return;
      } finally {
        making = null;
      }
    }
  }

  return {
    take: () => ready.shift() ?? null,
    refill() {
      stopped = false;
      filling ??= fill().finally(() => {
        filling = null;
      });
    },
    addresses,
    async drain() {
      stopped = true;
      await filling;
      for (const slot of ready.splice(0)) await options.remove(slot).catch(() => {});
    },
  };
}
