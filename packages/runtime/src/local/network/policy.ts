import { RuntimeError } from '../../errors.js';
import type { NetworkPolicy } from '../../interface.js';
import { formatCidr, parseCidr } from './addresses.js';

/** A validated policy: allowlist entries split into CIDRs (normalised) and lower-case domains. */
export interface CompiledPolicy {
  mode: NetworkPolicy['mode'];
  cidrs: string[];
  /** Exact names (`example.com`) and wildcards (`*.example.com`, which matches subdomains only). */
  domains: string[];
}

const DOMAIN_PATTERN =
  /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Validate and normalise a policy; throws INVALID_ARGUMENT naming the bad entry. */
export function compilePolicy(policy: NetworkPolicy): CompiledPolicy {
  if (policy.mode === 'internet' || policy.mode === 'none')
    return { mode: policy.mode, cidrs: [], domains: [] };
  if (policy.mode !== 'allowlist' || !Array.isArray(policy.allow)) {
    throw new RuntimeError('INVALID_ARGUMENT', 'network policy must be internet, none or allowlist{allow}', {
      policy,
    });
  }
  const cidrs = new Set<string>();
  const domains = new Set<string>();
  for (const raw of policy.allow) {
    const entry = typeof raw === 'string' ? raw.trim().toLowerCase().replace(/\.$/, '') : '';
    const cidr = /^[\d./]+$/.test(entry) ? parseCidr(entry) : null;
    if (cidr) {
      cidrs.add(formatCidr(cidr));
    } else if (entry.includes(':')) {
      throw new RuntimeError('INVALID_ARGUMENT', `IPv6 allowlist entries are not supported: ${String(raw)}`, {
        entry: raw,
      });
    } else if (entry.length <= 253 && DOMAIN_PATTERN.test(entry) && !/^[\d.]+$/.test(entry)) {
      domains.add(entry);
    } else {
      throw new RuntimeError('INVALID_ARGUMENT', `not a domain or IPv4 CIDR: ${String(raw)}`, { entry: raw });
    }
  }
  return { mode: 'allowlist', cidrs: [...cidrs], domains: [...domains] };
}

/** True when DNS name `name` (any case, optional trailing dot) matches one of `domains`. */
export function domainAllowed(name: string, domains: readonly string[]): boolean {
  const host = name.toLowerCase().replace(/\.$/, '');
  return domains.some((pattern) =>
    pattern.startsWith('*.')
      ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
      : host === pattern,
  );
}
