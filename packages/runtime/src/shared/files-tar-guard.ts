import { posix } from 'node:path';
import { RuntimeError } from '../errors.js';

const BLOCK = 512;
/** Longest GNU long name / pax header accepted into memory. */
const MAX_META_BYTES = 1024 * 1024;
/** Symlink hops followed while resolving one member path. */
const MAX_LINK_HOPS = 40;
/** Distinct directories members may go through: memory stays bounded on hostile archives. */
const MAX_PREFIXES = 200_000;
/** Member paths kept for diagnostics. */
const MAX_KEPT_MEMBERS = 1000;

// Typeflags whose size field counts data blocks that follow the header.
const DATA_TYPES = new Set(['0', '\0', '7']);
// Typeflags that must carry no data: a size there is where tar implementations disagree.
const NO_DATA_TYPES = new Set(['1', '2', '5', '6']);

/** Why an archive was refused. */
export type TarRejection =
  | 'absolute-path'
  | 'parent-traversal'
  | 'symlink-escape'
  | 'hardlink-escape'
  | 'device'
  | 'unsupported-type'
  | 'malformed';

/**
 * A streaming check of a tar archive's headers (ustar, GNU long names, pax), fed the same bytes
 * that go to `tar -x`. It throws RuntimeError('INVALID_ARGUMENT') for any member that would land
 * outside the extraction directory: an absolute name, a `..` component, a path through a symlink
 * of the archive pointing outside, a hard link to outside. Device nodes and GNU sparse/multi-volume
 * members are refused; data-bearing types are skipped by size so no header can hide in data.
 */
export class TarGuard {
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private skipBytes = 0;
  private meta: { type: string; size: number; chunks: Buffer[]; got: number } | null = null;
  private metaPadding = 0;
  private longName: string | null = null;
  private longLink: string | null = null;
  private pax: Record<string, string> = {};
  private globalPax: Record<string, string> = {};
  private zeroBlocks = 0;
  private ended = false;
  /** Symlinks seen so far: member path (normalised, relative) → link target. */
  private readonly symlinks = new Map<string, string>();
  /** The first member paths checked, in order (for tests and diagnostics). */
  readonly members: string[] = [];
  /** Members checked so far. */
  memberCount = 0;
  /** Every directory a member or hard link target is reached through (relative, normal). */
  readonly prefixes = new Set<string>();

  /** Parse the next bytes of the archive; throws on the first refused member. */
  write(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.ended) {
      if (this.skipBytes > 0) {
        const n = Math.min(this.skipBytes, chunk.length - offset);
        this.skipBytes -= n;
        offset += n;
      } else if (this.meta !== null) {
        const meta = this.meta;
        const n = Math.min(meta.size - meta.got, chunk.length - offset);
        meta.chunks.push(chunk.subarray(offset, offset + n));
        meta.got += n;
        offset += n;
        if (meta.got === meta.size) {
          this.meta = null;
          this.skipBytes = this.metaPadding;
          this.applyMeta(meta.type, Buffer.concat(meta.chunks));
        }
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + n);
        this.headerFill += n;
        offset += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.header);
        }
      }
    }
  }

  /** The archive is over: throws unless it ended cleanly (or at least on a block boundary). */
  end(): void {
    if (this.ended) return;
    if (this.headerFill !== 0 || this.skipBytes > 0 || this.meta !== null) {
      throw reject('malformed', '', 'archive is truncated');
    }
    if (this.memberCount === 0 && this.zeroBlocks === 0) {
      throw reject('malformed', '', 'archive is empty');
    }
  }

  private onHeader(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks >= 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumMatches(block)) throw reject('malformed', '', 'not a tar archive (bad header checksum)');
    const type = String.fromCharCode(block[156]!);
    const size = parseNumber(block.subarray(124, 136));
    if (size === null) throw reject('malformed', cString(block.subarray(0, 100)), 'bad size field');

    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      if (size > MAX_META_BYTES) throw reject('malformed', '', 'extended header too large');
      this.meta = { type, size, chunks: [], got: 0 };
      this.metaPadding = padding(size);
      if (size === 0) {
        this.meta = null;
        this.applyMeta(type, Buffer.alloc(0));
      }
      return;
    }

    const magic = block.subarray(257, 263).toString('latin1');
    let name = cString(block.subarray(0, 100));
    // POSIX ustar splits long names into prefix/name; GNU's 'ustar  ' uses those bytes otherwise.
    if (magic === 'ustar\0') {
      const prefix = cString(block.subarray(345, 500));
      if (prefix.length > 0) name = `${prefix}/${name}`;
    }
    let linkName = cString(block.subarray(157, 257));
    // Two sources for one name leave room for tar and this guard to disagree: refuse them.
    if (
      (this.pax.path !== undefined && this.longName !== null) ||
      (this.pax.linkpath !== undefined && this.longLink !== null)
    ) {
      throw reject('malformed', this.pax.path ?? name, 'both a pax and a GNU long name');
    }
    name = this.pax.path ?? this.longName ?? name;
    linkName = this.pax.linkpath ?? this.longLink ?? linkName;
    const paxSize = this.pax.size ?? this.globalPax.size;
    const dataSize = paxSize !== undefined ? Number(paxSize) : size;
    this.pax = {};
    this.longName = null;
    this.longLink = null;
    if (!Number.isSafeInteger(dataSize) || dataSize < 0) throw reject('malformed', name, 'bad size');

    this.checkMember(type, name, linkName, dataSize);
    if (DATA_TYPES.has(type)) this.skipBytes = dataSize + padding(dataSize);
  }

  private applyMeta(type: string, data: Buffer): void {
    if (type === 'L') this.longName = cString(data);
    else if (type === 'K') this.longLink = cString(data);
    else if (type === 'x') this.pax = { ...this.pax, ...parsePax(data) };
    else {
      const global = parsePax(data);
      // A name for every member that follows has no honest use.
      if (global.path !== undefined || global.linkpath !== undefined) {
        throw reject('malformed', global.path ?? global.linkpath ?? '', 'global pax header sets a name');
      }
      this.globalPax = { ...this.globalPax, ...global };
    }
  }

  private checkMember(type: string, name: string, linkName: string, size: number): void {
    if (type === '3' || type === '4') throw reject('device', name, 'device nodes are not allowed');
    if (!DATA_TYPES.has(type) && !NO_DATA_TYPES.has(type)) {
      throw reject('unsupported-type', name, `member type '${type}' is not supported`);
    }
    if (NO_DATA_TYPES.has(type) && size !== 0) throw reject('malformed', name, 'unexpected data');
    const path = memberPath(name);
    this.memberCount += 1;
    if (this.members.length < MAX_KEPT_MEMBERS) this.members.push(path);
    // A symlink member replaces whatever is at its path; anything else is opened through it.
    this.resolve(path, name, type !== '2');
    if (type === '1') {
      const target = memberPath(linkName, 'hardlink-escape');
      this.resolve(target, name, true);
    } else if (type === '2') {
      this.symlinks.set(path, linkName);
    }
  }

  /** Follow the archive's own symlinks along `path`; throw if one leads outside the directory. */
  private resolve(path: string, entry: string, includeLast: boolean): void {
    let parts = path === '' ? [] : path.split('/');
    this.addPrefixes(parts);
    let hops = 0;
    for (let i = 0; i < parts.length - (includeLast ? 0 : 1); i++) {
      const prefix = parts.slice(0, i + 1).join('/');
      const target = this.symlinks.get(prefix);
      if (target === undefined) continue;
      if (++hops > MAX_LINK_HOPS) throw reject('symlink-escape', entry, 'too many symlinks');
      if (target.startsWith('/')) {
        throw reject('symlink-escape', entry, `path goes through symlink ${prefix} -> ${target}`);
      }
      const joined = posix.normalize(posix.join(posix.dirname(prefix), target));
      if (joined === '..' || joined.startsWith('../')) {
        throw reject('symlink-escape', entry, `path goes through symlink ${prefix} -> ${target}`);
      }
      const base = joined === '.' ? [] : joined.split('/');
      parts = [...base, ...parts.slice(i + 1)];
      this.addPrefixes(parts);
      i = -1;
    }
  }

  private addPrefixes(parts: string[]): void {
    for (let i = 1; i < parts.length; i++) this.prefixes.add(parts.slice(0, i).join('/'));
    if (this.prefixes.size > MAX_PREFIXES) {
      throw reject('malformed', parts.join('/'), `more than ${MAX_PREFIXES} directories`);
    }
  }
}

/** A member name as a relative, normal path ('' for the extraction directory itself). */
function memberPath(name: string, reason: TarRejection = 'parent-traversal'): string {
  if (name.startsWith('/')) {
    throw reject(reason === 'parent-traversal' ? 'absolute-path' : reason, name, 'absolute member name');
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw reject(reason, name, 'member name contains ..');
  return parts.join('/');
}

function reject(reason: TarRejection, entry: string, message: string): RuntimeError {
  const where = entry === '' ? '' : ` (${entry})`;
  return new RuntimeError('INVALID_ARGUMENT', `archive refused: ${message}${where}`, { entry, reason });
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul === -1 ? buf.length : nul).toString('utf8');
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit set) numeric field. */
export function parseNumber(field: Buffer): number | null {
  if ((field[0]! & 0x80) !== 0) {
    if ((field[0]! & 0x40) !== 0) return null; // negative
    let value = field[0]! & 0x3f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return Number.isSafeInteger(value) ? value : null;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return null;
  return Number.parseInt(text, 8);
}

function checksumMatches(block: Buffer): boolean {
  const stored = parseNumber(block.subarray(148, 156));
  if (stored === null) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** pax records: "LEN key=value\n", LEN counting the whole record in bytes. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isSafeInteger(length) || length <= space - offset || offset + length > data.length) {
      throw reject('malformed', '', 'bad pax header');
    }
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return out;
}
