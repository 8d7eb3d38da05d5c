import type { FastifyInstance } from 'fastify';
import { invalidatePreviewAccess } from '../plugins/preview.js';

/**
 * Call after a change to who may do what — an API key revoked, a member's role changed or
 * removed, a session ended, a workspace or sandbox deleted. This server at once forgets the
 * preview proxy's cached access decisions and closes the open connections (terminals, `/ws`,
 * SSH, preview WebSockets) the change ended. Other servers catch up on their own: within 5 s
 * for previews, 15 s for connections.
 */
export async function accessChanged(app: FastifyInstance): Promise<void> {
  invalidatePreviewAccess(app);
  await app.tokenConnections.recheck();
}
