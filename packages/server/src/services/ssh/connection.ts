import type { Connection, ServerChannel } from 'ssh2';
import type { App } from '../../app.js';
import type { SshLogin } from './auth.js';
import { liveKeyLogins } from './keys.js';

/** How long an ended connection's client gets to show the reason before it is disconnected. */
const END_GRACE_MS = 2_000;

/**
 * One authenticated SSH connection: the sandbox it opens, who opened it, and the cleanups of
 * everything it started (processes, SFTP handles, forwarded sockets), all run when it closes.
 */
export class SshConnection {
  readonly #cleanups = new Set<() => void>();
  /** Channels running a shell or command: told why when the connection is ended. */
  readonly #terminals = new Set<ServerChannel>();
  #closed = false;
  /** Why the connection is being ended (see `end`), or null. */
  #ending: string | null = null;

  constructor(
    readonly app: App,
    readonly login: SshLogin,
    readonly ip: string,
    readonly client: Connection,
  ) {}

  /** True once the connection is being ended or has closed: it opens no more channels. */
  get ended(): boolean {
    return this.#closed || this.#ending !== null;
  }

  get sandboxId(): string {
    return this.login.sandboxId;
  }

  /** Traffic on the connection: activity for the sandbox's idle timeout. */
  touch(): void {
    this.app.sandboxes.touch(this.login.sandboxId);
  }

  /**
   * Null when the sandbox is running; otherwise the one-line reason to show (it was stopped,
   * paused or deleted since the login, or before it).
   */
  async unavailable(): Promise<string | null> {
    const id = this.login.sandboxId;
    if (this.#ending !== null) return `corral: ${this.#ending}`;
    // A credential that ended opens nothing more (the connection is cut at the next check).
    if (this.login.via === 'token') {
      if (!(await this.app.sandboxTokens.stillValid(id, this.login.credentialId, 'ssh')))
        return 'corral: the SSH token of this connection was revoked or has expired';
    } else {
      const login = { keyId: this.login.credentialId, sandboxId: id };
      if ((await liveKeyLogins(this.app.store.db, [login])).size === 0)
        return 'corral: the SSH key of this connection was removed, or its user may no longer open this sandbox';
    }
    const row = await this.app.sandboxes.find(id);
    if (!row) return `corral: sandbox ${id} no longer exists`;
    if (row.status === 'running') return null;
    const how = row.status === 'paused' ? 'resume' : 'start';
    return `corral: sandbox ${id} is ${row.status}; ${how} it first (corral sandbox ${how} ${id})`;
  }

  /** Runs `cleanup` when the connection closes (at once if it has); returns a function that forgets it. */
  onClose(cleanup: () => void): () => void {
    if (this.#closed) {
      cleanup();
      return () => {};
    }
    this.#cleanups.add(cleanup);
    return () => this.#cleanups.delete(cleanup);
  }

  /** Tells `channel` (a shell or command) why, should the connection be ended; returns a function that forgets it. */
  notify(channel: ServerChannel): () => void {
    this.#terminals.add(channel);
    return () => this.#terminals.delete(channel);
  }

  /**
   * Ends the connection (its credential ended): every open shell or command gets
   * `corral: <reason>` on stderr and exit status 1, everything the connection started is
   * killed, and the client is disconnected once those channels have closed (so it shows the
   * message first) or after END_GRACE_MS. Nothing new opens meanwhile.
   */
  end(reason: string): void {
    if (this.#closed || this.#ending !== null) return;
    this.#ending = reason;
    this.app.log.info(
      { sandbox_id: this.login.sandboxId, via: this.login.via, ip: this.ip, reason },
      'ssh connection ended: its credential ended',
    );
    const channels = [...this.#terminals];
    this.#terminals.clear();
    const disconnect = () => this.client.end();
    let open = channels.length;
    const grace = setTimeout(disconnect, END_GRACE_MS);
    grace.unref();
    for (const channel of channels) {
      channel.once('close', () => {
        if (--open > 0) return;
        clearTimeout(grace);
        disconnect();
      });
      try {
        channel.stderr.write(`\r\ncorral: ${reason}\r\n`);
        channel.exit(1);
        channel.end();
      } catch {
        // the channel is closing already
      }
    }
    this.close();
    if (open === 0) {
      clearTimeout(grace);
      disconnect();
    }
  }

  /** The connection has closed: kills and drops everything it started. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const cleanup of this.#cleanups) {
      try {
        cleanup();
      } catch {
        // already gone
      }
    }
    this.#cleanups.clear();
    this.#terminals.clear();
  }
}
