/*
 * Node only (imports node:net): local port forwarding over the multiplexed WebSocket, like
 * `ssh -L`. Exported from `@corral/sdk/node`, never from the browser entry.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { CorralError } from '../errors.js';
import type { ConnectOptions, SandboxConnection } from './connection.js';
import type { MuxTcpStream } from './tcp.js';
import { invalid } from './validate.js';

/** Channels the server allows per connection: beyond, the forwarder opens another connection. */
const CHANNELS_PER_CONNECTION = 64;

/** What `forwardPort` needs of a sandbox (a `Sandbox` is one). */
export interface Connectable {
  connect(options?: ConnectOptions): Promise<SandboxConnection>;
}

/** Options of `forwardPort`. */
export interface ForwardPortOptions {
  /** The local port (default: any free one; see `localPort` in the answer). */
  localPort?: number;
  /** The local address to listen on (default `127.0.0.1`). */
  host?: string;
  /** Check first that something listens on the port inside (default true). */
  verify?: boolean;
  /** Called when a forwarded connection fails (e.g. nothing listens any more); it is dropped. */
  onError?: (error: unknown) => void;
}

/** A running port forward. */
export interface PortForwarder {
  /** The local address it listens on. */
  readonly host: string;
  /** The local port it listens on. */
  readonly localPort: number;
  /** The port inside the sandbox. */
  readonly remotePort: number;
  /** Forwarded connections open now. */
  readonly activeConnections: number;
  /** Stops listening, drops every forwarded connection and closes the WebSockets. */
  close(): Promise<void>;
}

/**
 * Listens on a local TCP port and forwards every accepted connection to `port` inside the
 * sandbox, each as a TCP channel of a multiplexed WebSocket (one WebSocket for up to 64 at
 * once). Answers once listening.
 *
 * ```ts
 * const fwd = await forwardPort(box, 5432, { localPort: 15432 });
 * // psql -h 127.0.0.1 -p 15432 …
 * await fwd.close();
 * ```
 */
export async function forwardPort(
  box: Connectable,
  port: number,
  options: ForwardPortOptions = {},
): Promise<PortForwarder> {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw invalid(`Not a port: ${port}`, 'port');
  const host = options.host ?? '127.0.0.1';
  const pool = new ConnectionPool(box);
  try {
    if (options.verify !== false) {
      const probe = await (await pool.acquire()).tcp(port);
      await probe.close();
    }
  } catch (err) {
    await pool.close();
    throw err;
  }
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void forwardSocket(socket, pool, port).catch((err) => {
      socket.destroy();
      options.onError?.(err);
    });
  });
  try {
    await listen(server, options.localPort ?? 0, host);
  } catch (err) {
    await pool.close();
    throw err;
  }
  const address = server.address();
  const localPort = typeof address === 'object' && address ? address.port : (options.localPort ?? 0);
  return {
    host,
    localPort,
    remotePort: port,
    get activeConnections() {
      return sockets.size;
    },
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.all([stopped, pool.close()]);
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Pipes one accepted socket through a new TCP channel, both ways, with backpressure. */
async function forwardSocket(socket: Socket, pool: ConnectionPool, port: number): Promise<void> {
  const stream: MuxTcpStream = await (await pool.acquire()).tcp(port);
  if (socket.destroyed) {
    await stream.close();
    return;
  }
  // Local → sandbox: one chunk at a time, within the channel's credit.
  socket.on('data', (chunk: Buffer) => {
    socket.pause();
    stream.write(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)).then(
      () => socket.resume(),
      () => socket.destroy(),
    );
  });
  socket.on('end', () => void stream.end().catch(() => {}));
  socket.on('error', () => {}); // 'close' follows
  socket.on('close', () => void stream.close());
  socket.resume();
  // Sandbox → local: read the next chunk only once the socket took the last one. The channel's
  // end (EOF, reset, the WebSocket gone) ends this loop after the bytes already received.
  try {
    for (;;) {
      const chunk = await stream.read();
      if (chunk === null) {
        socket.end();
        return;
      }
      if (!socket.write(chunk)) await drained(socket);
      if (socket.destroyed) return;
    }
  } catch {
    // Reset by the port's side, or the WebSocket was lost: what was received is written first
    // (destroy would drop the socket's unflushed bytes), then the local side is ended too.
    socket.end();
  }
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** The forwarder's WebSockets: reused while they have room, reopened when one closes. */
class ConnectionPool {
  readonly #connections: SandboxConnection[] = [];
  #opening: Promise<SandboxConnection> | null = null;
  #closed = false;

  constructor(private readonly box: Connectable) {}

  async acquire(): Promise<SandboxConnection> {
    for (;;) {
      if (this.#closed)
        throw new CorralError('The port forward is closed', { code: 'FORWARD_CLOSED', status: 0 });
      const live = this.#connections.filter((c) => !c.isClosed);
      this.#connections.splice(0, this.#connections.length, ...live);
      const roomy = live.find((c) => c.channelCount < CHANNELS_PER_CONNECTION);
      if (roomy) return roomy;
      if (!this.#opening) {
        this.#opening = this.box.connect().then(
          (conn) => {
            this.#opening = null;
            if (this.#closed) void conn.close();
            else this.#connections.push(conn);
            return conn;
          },
          (err: unknown) => {
            this.#opening = null;
            throw err;
          },
        );
      }
      await this.#opening;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#connections.splice(0).map((c) => c.close()));
  }
}
