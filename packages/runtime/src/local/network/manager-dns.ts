import { readFile } from 'node:fs/promises';
import { RuntimeError } from '../../errors.js';
import { type DnsForwarder, type DnsVerdict, parseUpstream, startDnsForwarder } from './dns-forwarder.js';
import type { AnswerAddress, DnsQuery } from './dns-wire.js';
import { applyNft, type NftContext, resolvedElements } from './nft.js';
import { type CompiledPolicy, domainAllowed } from './policy.js';
import type { NetworkManagerOptions } from './types.js';

/** A sandbox the DNS forwarder answers, by its address. */
export interface Active {
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

/** What the DNS gate needs from the network manager. */
export interface DnsGateOptions {
  gateway: string;
  /** Its `upstreamDns` (default: the host's /etc/resolv.conf nameservers) is read on `start()`. */
  options: NetworkManagerOptions;
  ctx: NftContext;
  byAddress: Map<string, Active>;
  /** The manager's queue: nft changes run one at a time. */
  serial: <T>(task: () => Promise<T>) => Promise<T>;
}

/** The DNS forwarder on the gateway, answering each sandbox under its policy. */
export interface DnsGate {
  /** Listen on `gateway:53`; does nothing when already listening. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Build the DNS gate; nothing listens until `start()`. */
export function createDnsGate({ gateway, options, ctx, byAddress, serial }: DnsGateOptions): DnsGate {
  let forwarder: DnsForwarder | null = null;

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
    async start() {
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
    },
    async close() {
      await forwarder?.close();
      forwarder = null;
    },
  };
}
