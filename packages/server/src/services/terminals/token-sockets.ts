import type { WebSocket } from 'ws';

/** Close code sent to a terminal whose token was revoked or ran out (1008: policy violation). */
export const TOKEN_CLOSE_CODE = 1008;

/**
 * The terminal WebSockets opened with a sandbox token, by token id: revoking a token also
 * ends the connections it opened (not only later ones), and so does its expiry.
 */
export class TokenSockets {
  readonly #byToken = new Map<string, Set<WebSocket>>();

  /** Tracks `socket` under `tokenId` until it closes; closes it when the token expires (`expiresAt`). */
  add(tokenId: string, socket: WebSocket, expiresAt: string): void {
    let sockets = this.#byToken.get(tokenId);
    if (!sockets) {
      sockets = new Set();
      this.#byToken.set(tokenId, sockets);
    }
    sockets.add(socket);
    // Tokens live at most 24 hours, well under setTimeout's 24.8-day limit.
    const expiry = setTimeout(
      () => socket.close(TOKEN_CLOSE_CODE, 'token expired'),
      Math.max(0, Date.parse(expiresAt) - Date.now()),
    );
    expiry.unref();
    socket.once('close', () => {
      clearTimeout(expiry);
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
    for (const socket of sockets) socket.close(TOKEN_CLOSE_CODE, 'token revoked');
    return sockets.size;
  }
}
