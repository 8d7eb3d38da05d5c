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

/** A new id: `newId('sbx')` → `sbx_4kT9…` (prefix, underscore, 22 base62 characters). */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(ID_RANDOM_LENGTH)}`;
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
