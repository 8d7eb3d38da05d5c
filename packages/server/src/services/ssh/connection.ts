import type { App } from '../../app.js';
import type { SshLogin } from './auth.js';

/**
 * One authenticated SSH connection: the sandbox it opens, who opened it, and the cleanups of
 * everything it started (processes, SFTP handles, forwarded sockets), all run when it closes.
 */
export class SshConnection {
  readonly #cleanups = new Set<() => void>();
  #closed = false;

  constructor(
    readonly app: App,
    readonly login: SshLogin,
    readonly ip: string,
  ) {}

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
    if (this.login.via === 'token') {
      // A revoked token opens nothing more (what it opened already keeps running).
      const token = await this.app.sandboxTokens.get(id, this.login.credentialId);
      if (!token || token.revoked_at !== null) return 'corral: the SSH token of this connection was revoked';
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
  }
}
