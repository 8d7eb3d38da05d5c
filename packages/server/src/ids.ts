import { randomBytes } from 'node:crypto';

/** The type prefixes of Corral's ids (`sbx_…`, `ws_…` …). */
export const ID_PREFIXES = [
  'usr',
  'ws',
  'key',
  'ses',
  'evt',
  'sbx',
  'snap',
  'tpl',
  'req',
  'alert',
  'notif',
  'rule',
  'proc',
  'tun',
  'sshk',
  'agent',
] as const;

/** A known id prefix. */
export type IdPrefix = (typeof ID_PREFIXES)[number];

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Random characters after the prefix: 22 base62 characters ≈ 131 bits. */
export const ID_RANDOM_LENGTH = 22;

/** `length` characters of crypto-random base62 (rejection sampling, so no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * Prefixes whose ids end up in host names (preview URLs `3000-sbx_….localhost`): browsers
 * lowercase a Host, so these ids use lowercase letters and digits only (22 base36 characters ≈
 * 113 bits).
 */
const HOSTNAME_SAFE: ReadonlySet<IdPrefix> = new Set(['sbx']);

/** A new id: `newId('ws')` → `ws_4kT9…` (prefix, underscore, 22 base62 characters; base36 for sandboxes). */
export function newId(prefix: IdPrefix): string {
  const random = randomBase62(ID_RANDOM_LENGTH);
  return `${prefix}_${HOSTNAME_SAFE.has(prefix) ? lowercaseBase36(random) : random}`;
}

/** Folds base62 characters onto 0-9a-z without bias toward digits: A-Z and a-z both map to a-z. */
function lowercaseBase36(value: string): string {
  return value.toLowerCase();
}

/** True when `value` looks like an id with the given prefix (shape only, not existence). */
export function isId(value: unknown, prefix: IdPrefix): value is string {
  return (
    typeof value === 'string' &&
    value.length === prefix.length + 1 + ID_RANDOM_LENGTH &&
    value.startsWith(`${prefix}_`) &&
    /^[0-9A-Za-z]+$/.test(value.slice(prefix.length + 1))
  );
}
