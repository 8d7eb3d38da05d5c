/**
 * File capabilities as stored in the `security.capability` xattr (struct vfs_cap_data, see
 * linux/capability.h), turned into the text form `setcap` takes, with capabilities by number.
 */

const VFS_CAP_REVISION_MASK = 0xff00_0000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x0000_0001;
const WORDS_BY_REVISION: Record<number, number> = { 16777216: 1, 33554432: 2, 50331648: 2 };

/** `setcap` text for a raw xattr value (v1, v2 or v3); undefined when malformed or empty. */
export function capabilityText(raw: Buffer): string | undefined {
  if (raw.length < 4) return undefined;
  const magic = raw.readUInt32LE(0);
  const words = WORDS_BY_REVISION[(magic & VFS_CAP_REVISION_MASK) >>> 0];
  if (words === undefined || raw.length < 4 + 8 * words) return undefined;
  const permitted: number[] = [];
  const inheritable: number[] = [];
  for (let word = 0; word < words; word++) {
    const p = raw.readUInt32LE(4 + 8 * word);
    const i = raw.readUInt32LE(8 + 8 * word);
    for (let bit = 0; bit < 32; bit++) {
      if ((p >>> bit) & 1) permitted.push(word * 32 + bit);
      if ((i >>> bit) & 1) inheritable.push(word * 32 + bit);
    }
  }
  // The effective flag is one bit for the whole file: every listed capability gets it or none.
  const e = (magic & VFS_CAP_FLAGS_EFFECTIVE) !== 0 ? 'e' : '';
  const clauses: string[] = [];
  if (permitted.length > 0) clauses.push(`${permitted.join(',')}=p${e}`);
  if (inheritable.length > 0) clauses.push(`${inheritable.join(',')}${clauses.length > 0 ? '+' : '='}i${e}`);
  return clauses.length > 0 ? clauses.join(' ') : undefined;
}
