/**
 * Just enough of the DNS wire format (RFC 1035 §4) for the forwarder: the header, the first
 * question and the A records of the answer section. Everything else is passed through untouched.
 */

export const DNS_TYPE_A = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_REFUSED = 5;
export const RCODE_FORMERR = 1;

const HEADER_BYTES = 12;

/** A parsed query: its id, the question's name (lower case, no trailing dot) and type. */
export interface DnsQuery {
  id: number;
  name: string;
  type: number;
  /** Offset just past the question section (header + first question). */
  questionEnd: number;
}

/** Read a possibly compressed name at `offset`; returns the name and the offset after it. */
function readName(message: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  for (let jumps = 0; jumps < 64; jumps++) {
    const length = message.readUInt8(offset);
    if (length === 0) {
      return { name: labels.join('.').toLowerCase(), next: next === -1 ? offset + 1 : next };
    }
    if ((length & 0xc0) === 0xc0) {
      if (next === -1) next = offset + 2;
      offset = message.readUInt16BE(offset) & 0x3fff;
      continue;
    }
    if (length > 63 || offset + 1 + length > message.length) throw new RangeError('bad label');
    labels.push(message.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  throw new RangeError('name compression loop');
}

/** Parse a query message; null when it is not a well-formed single-question query. */
export function parseQuery(message: Buffer): DnsQuery | null {
  try {
    if (message.length < HEADER_BYTES) return null;
    const flags = message.readUInt16BE(2);
    if (flags & 0x8000 || message.readUInt16BE(4) !== 1) return null;
    const { name, next } = readName(message, HEADER_BYTES);
    const type = message.readUInt16BE(next);
    return { id: message.readUInt16BE(0), name, type, questionEnd: next + 4 };
  } catch {
    return null;
  }
}

/** An error response to `query`: same id, opcode, RD and question; no records. */
export function buildErrorResponse(message: Buffer, query: DnsQuery, rcode: number): Buffer {
  const response = Buffer.from(message.subarray(0, query.questionEnd));
  const requestFlags = response.readUInt16BE(2);
  // QR=1, keep opcode and RD, RA=1, rcode.
  response.writeUInt16BE(0x8000 | (requestFlags & 0x7900) | 0x0080 | rcode, 2);
  response.writeUInt16BE(1, 4);
  response.writeUInt16BE(0, 6);
  response.writeUInt16BE(0, 8);
  response.writeUInt16BE(0, 10);
  return response;
}

/** A minimal FORMERR for a message we could not parse (only the id is echoed). */
export function buildFormatError(message: Buffer): Buffer | null {
  if (message.length < 2) return null;
  const response = Buffer.alloc(HEADER_BYTES);
  message.copy(response, 0, 0, 2);
  response.writeUInt16BE(0x8000 | 0x0080 | RCODE_FORMERR, 2);
  return response;
}

/** An IPv4 address from an A record, with its TTL in seconds. */
export interface AnswerAddress {
  address: string;
  ttlSeconds: number;
}

/** A parsed response: its id, rcode and the A records of its answer section. */
export interface DnsResponse {
  id: number;
  rcode: number;
  addresses: AnswerAddress[];
}

/** Parse a response message; null when malformed. */
export function parseResponse(message: Buffer): DnsResponse | null {
  try {
    if (message.length < HEADER_BYTES) return null;
    const flags = message.readUInt16BE(2);
    if (!(flags & 0x8000)) return null;
    const questions = message.readUInt16BE(4);
    const answers = message.readUInt16BE(6);
    let offset = HEADER_BYTES;
    for (let i = 0; i < questions; i++) offset = readName(message, offset).next + 4;
    const addresses: AnswerAddress[] = [];
    for (let i = 0; i < answers; i++) {
      offset = readName(message, offset).next;
      const type = message.readUInt16BE(offset);
      const recordClass = message.readUInt16BE(offset + 2);
      const ttlSeconds = message.readUInt32BE(offset + 4);
      const length = message.readUInt16BE(offset + 8);
      const data = offset + 10;
      if (data + length > message.length) return null;
      if (type === DNS_TYPE_A && recordClass === 1 && length === 4) {
        addresses.push({ address: [...message.subarray(data, data + 4)].join('.'), ttlSeconds });
      }
      offset = data + length;
    }
    return { id: message.readUInt16BE(0), rcode: flags & 0x000f, addresses };
  } catch {
    return null;
  }
}
