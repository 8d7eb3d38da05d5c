import type { FastifyInstance } from 'fastify';
import type { SandboxService } from '../sandboxes/service.js';
import { TerminalSessions } from './manager.js';
import { TokenSockets } from './token-sockets.js';

/** The terminal sessions of one app, and the connections opened with sandbox tokens. */
export interface Terminals {
  sessions: TerminalSessions;
  tokenSockets: TokenSockets;
}

// Keyed by the app's sandbox service, which every encapsulated context shares.
const terminals = new WeakMap<SandboxService, Terminals>();

/**
 * The app's terminal sessions (made on first use, killed when the app closes) and the
 * terminal connections opened with sandbox tokens (closed when their token is revoked).
 */
export function terminalsOf(app: FastifyInstance): Terminals {
  let found = terminals.get(app.sandboxes);
  if (!found) {
    const sandboxes = app.sandboxes;
    const sessions = new TerminalSessions({
      runtime: () => sandboxes.runtime,
      envFor: (id) => sandboxes.envFor(id),
      touch: (id) => sandboxes.touch(id),
      log: app.log,
    });
    found = { sessions, tokenSockets: new TokenSockets() };
    terminals.set(sandboxes, found);
  }
  return found;
}
