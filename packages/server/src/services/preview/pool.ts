import type { Duplex } from 'node:stream';

/** How long an idle upstream connection is kept: under the usual 5 s keep-alive of servers (Node's). */
const IDLE_MS = 4_000;
/** Idle connections kept per sandbox port. */
const MAX_IDLE_PER_TARGET = 8;

/** A connection to a sandbox port, and whether it served a request before. */
export interface Upstream {
  socket: Duplex;
  reused: boolean;
}

interface Idle {
  socket: Duplex;
  timer: NodeJS.Timeout;
  onData: () => void;
}

/**
 * Keep-alive for the proxy's connections into sandboxes: opening one costs a relay process,
 * so a connection whose exchange ended cleanly (the HTTP client emits `free`) waits here a few
 * seconds for the next request to the same sandbox port. An idle connection that receives
 * anything (the server closing it) is dropped.
 */
export class UpstreamPool {
  readonly #idle = new Map<string, Idle[]>();

  /** An idle connection to `key` (`sandbox:port`), else a new one from `open`. */
  async acquire(key: string, open: () => Promise<Duplex>): Promise<Upstream> {
    const list = this.#idle.get(key);
    while (list && list.length > 0) {
      const idle = list.pop()!;
      if (list.length === 0) this.#idle.delete(key);
      clearTimeout(idle.timer);
      idle.socket.off('data', idle.onData);
      idle.socket.off('end', idle.onData);
      idle.socket.off('close', idle.onData);
      if (!idle.socket.destroyed && idle.socket.writable) return { socket: idle.socket, reused: true };
    }
    const socket = await open();
    // Late errors of a connection (after its exchange settled) must not go unheard.
    socket.on('error', () => {});
    return { socket, reused: false };
  }

  /** Keeps `socket` for the next request to `key` (or closes it when enough are kept). */
  release(key: string, socket: Duplex): void {
    if (socket.destroyed || !socket.writable) return;
    const list = this.#idle.get(key) ?? [];
    if (list.length >= MAX_IDLE_PER_TARGET) {
      socket.destroy();
      return;
    }
    const drop = () => {
      const current = this.#idle.get(key);
      const at = current?.findIndex((i) => i.socket === socket) ?? -1;
      if (current && at >= 0) {
        clearTimeout(current[at]!.timer);
        current.splice(at, 1);
        if (current.length === 0) this.#idle.delete(key);
      }
      socket.destroy();
    };
    const idle: Idle = { socket, timer: setTimeout(drop, IDLE_MS), onData: drop };
    idle.timer.unref();
    socket.on('data', idle.onData);
    socket.on('end', idle.onData);
    socket.on('close', idle.onData);
    list.push(idle);
    this.#idle.set(key, list);
  }

  /** Closes every idle connection (server shutdown). */
  close(): void {
    for (const list of this.#idle.values()) {
      for (const idle of list) {
        clearTimeout(idle.timer);
        idle.socket.destroy();
      }
    }
    this.#idle.clear();
  }
}
