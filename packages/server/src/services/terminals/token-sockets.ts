import type { WebSocket } from 'ws';

/** Close code sent to a terminal whose token was revoked (1008: policy violation). */
export const TOKEN_REVOKED_CLOSE_CODE = 1008;

/**
 * The terminal WebSockets opened with a sandbox token, by token id, so revoking a token also
 * ends the connections it opened (not only later ones).
 */
export class TokenSockets {
  readonly #byToken = new Map<string, Set<WebSocket>>();

  /** Tracks `socket` under `tokenId` until it closes. */
  add(tokenId: string, socket: WebSocket): void {
    let sockets = this.#byToken.get(tokenId);
    if (!sockets) {
      sockets = new Set();
      this.#byToken.set(tokenId, sockets);
    }
    sockets.add(socket);
    socket.once('close', () => {
      const current = this.#byToken.get(tokenId);
      if (!current) return;
      current.delete(socket);
      if (current.size === 0) this.#byToken.delete(tokenId);
    });
  }

  /** Closes every connection opened with `tokenId`; returns how many there were. */
  closeAll(tokenId: string): number {
    const sockets = this.#byToken.get(tokenId);
    if (!sockets) return 0;
    this.#byToken.delete(tokenId);
    for (const socket of sockets) socket.close(TOKEN_REVOKED_CLOSE_CODE, 'token revoked');
    return sockets.size;
  }
}
