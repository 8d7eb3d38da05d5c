import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createConnection, createServer, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import {
  type AnswerAddress,
  buildErrorResponse,
  buildFormatError,
  type DnsQuery,
  parseQuery,
  parseResponse,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
} from './dns-wire.js';

/** An upstream resolver. */
export interface DnsUpstream {
  host: string;
  port: number;
}

/** What the forwarder does with a query from `clientAddress` for `query.name`. */
export type DnsVerdict =
  | { action: 'refuse' }
  | { action: 'nxdomain' }
  /** Forward; `onAnswer` (when given) runs with the answer's A records before the reply is sent. */
  | { action: 'forward'; onAnswer?: (addresses: AnswerAddress[]) => Promise<void> };

export interface DnsForwarderOptions {
  host: string;
  port: number;
  upstreams: DnsUpstream[];
  decide(clientAddress: string, query: DnsQuery): DnsVerdict;
  /** Per-upstream attempt; the whole query gives up after trying every upstream once. */
  upstreamTimeoutMs?: number;
}

/** A DNS forwarder listening on UDP and TCP. */
export interface DnsForwarder {
  close(): Promise<void>;
}

const MAX_TCP_MESSAGE = 65_535;
const TCP_IDLE_MS = 10_000;
const MAX_IN_FLIGHT = 512;
const MAX_TCP_CONNECTIONS = 128;

/** Parse `host`, `host:port`, `[v6]` or `[v6]:port` (port 53 by default). */
export function parseUpstream(text: string): DnsUpstream {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? 53) };
  if (isIPv6(text)) return { host: text, port: 53 };
  const [host, port] = text.split(':');
  return { host: host ?? text, port: Number(port ?? 53) };
}

function askUdp(upstream: DnsUpstream, message: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(upstream.host) ? 'udp6' : 'udp4');
    const finish = (answer: Buffer | null) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('message', (answer, rinfo) => {
      // Ignore anything that is not the upstream answering this query's id.
      if (
        rinfo.port !== upstream.port ||
        answer.length < 2 ||
        answer.readUInt16BE(0) !== message.readUInt16BE(0)
      ) {
        return;
      }
      finish(answer);
    });
    socket.send(message, upstream.port, upstream.host);
  });
}

function askTcp(upstream: DnsUpstream, message: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: upstream.host, port: upstream.port });
    let received = Buffer.alloc(0);
    const finish = (answer: Buffer | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        finish(received.subarray(2, 2 + received.readUInt16BE(0)));
      }
    });
    socket.on('end', () => finish(null));
  });
}

/** Start a forwarder bound to `host:port` (UDP and TCP); resolves once both listen. */
export async function startDnsForwarder(options: DnsForwarderOptions): Promise<DnsForwarder> {
  const timeoutMs = options.upstreamTimeoutMs ?? 2_000;

  async function answer(message: Buffer, clientAddress: string, tcp: boolean): Promise<Buffer | null> {
    const query = parseQuery(message);
    if (!query) return buildFormatError(message);
    const verdict = options.decide(clientAddress, query);
    if (verdict.action === 'refuse') return buildErrorResponse(message, query, RCODE_REFUSED);
    if (verdict.action === 'nxdomain') return buildErrorResponse(message, query, RCODE_NXDOMAIN);
    for (const upstream of options.upstreams) {
      const reply = tcp
        ? await askTcp(upstream, message, timeoutMs)
        : await askUdp(upstream, message, timeoutMs);
      if (!reply) continue;
      if (verdict.onAnswer) {
        const parsed = parseResponse(reply);
        if (!parsed) return buildErrorResponse(message, query, RCODE_SERVFAIL);
        try {
          // The addresses must be allowed before the sandbox learns them, or its first SYN is dropped.
          await verdict.onAnswer(parsed.addresses);
        } catch {
          return buildErrorResponse(message, query, RCODE_SERVFAIL);
        }
      }
      return reply;
    }
    return buildErrorResponse(message, query, RCODE_SERVFAIL);
  }

  // Bound the work a flood of queries can cause; beyond this, UDP queries are dropped (clients retry).
  let inFlight = 0;
  const udp: Socket = createSocket('udp4');
  udp.on('message', (message: Buffer, rinfo: RemoteInfo) => {
    if (inFlight >= MAX_IN_FLIGHT) return;
    inFlight++;
    answer(message, rinfo.address, false)
      .then((reply) => {
        if (reply) udp.send(reply, rinfo.port, rinfo.address);
      })
      .catch(() => {})
      .finally(() => {
        inFlight--;
      });
  });
  udp.on('error', () => {});

  const sockets = new Set<TcpSocket>();
  const tcp: Server = createServer((socket) => {
    if (sockets.size >= MAX_TCP_CONNECTIONS) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE + 2) socket.destroy();
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        chain = chain
          .then(async () => {
            const reply = await answer(message, socket.remoteAddress?.replace(/^::ffff:/, '') ?? '', true);
            if (!reply || socket.destroyed) return;
            const length = Buffer.alloc(2);
            length.writeUInt16BE(reply.length);
            socket.write(Buffer.concat([length, reply]));
          })
          .catch(() => {
            socket.destroy();
          });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: options.host, port: options.port, exclusive: true }, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: options.host, port: options.port }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    udp.close();
    throw err;
  }

  return {
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}
