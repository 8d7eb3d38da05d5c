import type { FastifyInstance } from 'fastify';
import type { SandboxService } from '../sandboxes/service.js';
import { TerminalSessions } from './manager.js';

/**
 * The terminal sessions of one app. (Connections opened with sandbox tokens are tracked by
 * `app.tokenConnections`, which closes them when their token ends.)
 */
export interface Terminals {
  sessions: TerminalSessions;
}

// Keyed by the app's sandbox service, which every encapsulated context shares.
const terminals = new WeakMap<SandboxService, Terminals>();

/** The app's terminal sessions (made on first use, killed when the app closes). */
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
    found = { sessions };
    terminals.set(sandboxes, found);
  }
  return found;
}
