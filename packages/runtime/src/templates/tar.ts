/**
 * A streaming reader of tar archives (ustar, GNU long names, pax headers): just enough to apply
 * image layers ourselves, so that every path is checked and resolved inside the target tree
 * rather than trusted to an extractor that follows symlinks on the host.
 */

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSeconds: number;
  linkName: string;
  devMajor: number;
  devMinor: number;
  /** Extended attributes from pax `SCHILY.xattr.*` records. */
  xattrs: Record<string, string>;
  /** The entry's content; read it before asking for the next entry, or it is skipped. */
  body(): AsyncGenerator<Buffer>;
}

/** A malformed archive. */
export class TarFormatError extends Error {}

const BLOCK = 512;
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/** The entries of a tar stream, in order. */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  for (;;) {
    const header = await reader.read(BLOCK);
    if (header === undefined || header.every((byte) => byte === 0)) return;
    verifyChecksum(header);
    const typeFlag = String.fromCharCode(header[156]!);
    let size = readNumber(header, 124, 12);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (typeFlag === 'L' || typeFlag === 'K' || typeFlag === 'x' || typeFlag === 'g') {
      const data = await reader.readExactly(size + padding);
      const content = data.subarray(0, size);
      if (typeFlag === 'L') longName = cString(content);
      else if (typeFlag === 'K') longLink = cString(content);
      else if (typeFlag === 'x') pax = parsePax(content);
      continue;
    }
    const type = TYPES[typeFlag];
    if (type === undefined)
      throw new TarFormatError(`unsupported tar entry type ${JSON.stringify(typeFlag)}`);
    const isUstar = header.subarray(257, 263).toString('latin1') === 'ustar\0';
    const prefix = isUstar ? cString(header.subarray(345, 500)) : '';
    const shortName = cString(header.subarray(0, 100));
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    if (pax.size !== undefined) size = Number(pax.size);
    const xattrs: Record<string, string> = {};
    for (const [key, value] of Object.entries(pax)) {
      if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value;
    }
    let remaining = type === 'file' ? size : 0;
    const entry: TarEntry = {
      name,
      type,
      mode: readNumber(header, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : readNumber(header, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : readNumber(header, 116, 8),
      size: type === 'file' ? size : 0,
      mtimeSeconds: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : readNumber(header, 136, 12),
      linkName: pax.linkpath ?? longLink ?? cString(header.subarray(157, 257)),
      devMajor: readNumber(header, 329, 8),
      devMinor: readNumber(header, 337, 8),
      xattrs,
      body: async function* () {
        for await (const chunk of reader.stream(remaining)) {
          remaining -= chunk.length;
          yield chunk;
        }
      },
    };
    longName = undefined;
    longLink = undefined;
    pax = {};
    yield entry;
    // Whatever the consumer left unread (and the size of a non-file entry) is skipped.
    const unread = remaining + (type === 'file' ? 0 : size);
    await reader.skip(unread + ((BLOCK - (size % BLOCK)) % BLOCK));
  }
}

function verifyChecksum(header: Buffer): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (sum !== readNumber(header, 148, 8)) throw new TarFormatError('tar header checksum mismatch');
}

/** An octal field, or GNU base-256 when the high bit of the first byte is set. */
function readNumber(header: Buffer, offset: number, length: number): number {
  const field = header.subarray(offset, offset + length);
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`bad number in tar header: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

/** pax records: "<length> <key>=<value>\n", length counting the whole record. */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isInteger(length) || length <= 0) throw new TarFormatError('bad pax record');
    const record = data.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals !== -1) {
      // Values are bytes (xattrs are binary): keep them as latin1 except for paths.
      const key = record.subarray(0, equals).toString('utf8');
      const raw = record.subarray(equals + 1);
      records[key] = key.startsWith('SCHILY.xattr.') ? raw.toString('latin1') : raw.toString('utf8');
    }
    offset += length;
  }
  return records;
}

/** Exact-size reads over an async stream of buffers. */
class ByteReader {
  #pending: Buffer = Buffer.alloc(0);
  constructor(readonly source: AsyncIterator<Buffer>) {}

  /** `length` bytes, or undefined at a clean end of stream. */
  async read(length: number): Promise<Buffer | undefined> {
    while (this.#pending.length < length) {
      const next = await this.source.next();
      if (next.done) {
        if (this.#pending.length === 0) return undefined;
        throw new TarFormatError('truncated tar archive');
      }
      this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    }
    const out = this.#pending.subarray(0, length);
    this.#pending = this.#pending.subarray(length);
    return out;
  }

  async readExactly(length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const out = await this.read(length);
    if (out === undefined) throw new TarFormatError('truncated tar archive');
    return out;
  }

  async *stream(length: number): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      if (this.#pending.length === 0) {
        const next = await this.source.next();
        if (next.done) throw new TarFormatError('truncated tar archive');
        this.#pending = next.value;
      }
      const take = Math.min(left, this.#pending.length);
      const chunk = this.#pending.subarray(0, take);
      this.#pending = this.#pending.subarray(take);
      left -= take;
      yield chunk;
    }
  }

  async skip(length: number): Promise<void> {
    for await (const _ of this.stream(length)) {
      // discard
    }
  }
}
