import type { FastifyInstance } from 'fastify';
import type { SandboxService } from '../sandboxes/service.js';
import { UrlSigner } from '../signed-urls.js';
import { TerminalSessions } from './manager.js';

/** The terminal sessions and the observer-token signer of one app. */
export interface Terminals {
  sessions: TerminalSessions;
  signer: UrlSigner;
}

// Keyed by the app's sandbox service, which every encapsulated context shares.
const terminals = new WeakMap<SandboxService, Terminals>();

/**
 * The app's terminal sessions (made on first use, killed when the app closes) and the signer
 * of observer tokens (the signed-URL signer, keyed from the JWT secret).
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
    found = { sessions, signer: UrlSigner.fromSecret(app.config.jwtSecret) };
    terminals.set(sandboxes, found);
  }
  return found;
}
