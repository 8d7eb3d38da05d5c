import { Type } from 'typebox';
import type { App } from '../../app.js';
import { accessChanged } from '../../services/access-changed.js';
import { revokeKeyForCaller } from '../../services/keys.js';
import { SECURITY } from '../auth/schemas.js';

/** `DELETE /v1/account/keys/{id}`: revoke; the key fails on its very next request. */
export function registerRevokeKeyRoute(app: App): void {
  app.delete(
    '/v1/account/keys/:id',
    {
      schema: {
        tags: ['keys'],
        summary: 'Revoke an API key',
        security: SECURITY,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await revokeKeyForCaller(app, request, request.params.id);
      await accessChanged(app); // its open terminals, /ws and preview WebSockets end now
      return reply.code(204).send(null);
    },
  );
}
