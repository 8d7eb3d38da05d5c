import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { SandboxService } from '../sandboxes/service.js';
import { MuxConnection } from './connection.js';

/** Multiplexed connections one sandbox may have open at once. */
export const MAX_CONNECTIONS_PER_SANDBOX = 32;
/** How often connections are pinged (a client that misses a ping is cut off): 30 s. */
const HEARTBEAT_MS = 30_000;

/** The open multiplexed WebSockets of one app. */
export class MuxConnections {
  readonly #open = new Set<MuxConnection>();
  readonly #app: FastifyInstance;
  #timer: NodeJS.Timeout | null = null;

  constructor(app: FastifyInstance) {
    this.#app = app;
  }

  /** The connections open now. */
  get all(): readonly MuxConnection[] {
    return [...this.#open];
  }

  /** The connections open now to sandbox `sandboxId`. */
  countFor(sandboxId: string): number {
    let n = 0;
    for (const c of this.#open) if (c.sandboxId === sandboxId) n++;
    return n;
  }

  /** Serves `socket` as a multiplexed connection to sandbox `sandboxId`. */
  accept(socket: WebSocket, sandboxId: string): MuxConnection {
    const sandboxes = this.#app.sandboxes;
    const connection = new MuxConnection(socket, {
      sandboxId,
      runtime: () => sandboxes.runtime,
      envFor: (id) => sandboxes.envFor(id),
      touch: (id) => sandboxes.touch(id),
      log: this.#app.log,
      onEnd: (ended) => {
        this.#open.delete(ended);
        if (this.#open.size === 0) this.#stopTimer();
      },
    });
    this.#open.add(connection);
    if (!this.#timer) {
      this.#timer = setInterval(() => {
        for (const c of this.#open) c.heartbeat();
      }, HEARTBEAT_MS);
      this.#timer.unref();
    }
    return connection;
  }

  /** Closes every connection and kills what they started (server shutdown). */
  closeAll(): void {
    for (const connection of [...this.#open]) connection.close();
    this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

// Keyed by the app's sandbox service, which every encapsulated context shares.
const registries = new WeakMap<SandboxService, MuxConnections>();

/** The app's multiplexed connections (made on first use). */
export function muxOf(app: FastifyInstance): MuxConnections {
  let found = registries.get(app.sandboxes);
  if (!found) {
    found = new MuxConnections(app);
    registries.set(app.sandboxes, found);
  }
  return found;
}
