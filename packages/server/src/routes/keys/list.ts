import type { App } from '../../app.js';
import { listKeysForCaller } from '../../services/keys.js';
import { SECURITY } from '../auth/schemas.js';
import { ApiKeySchema, ListQuery, PageOf } from './schemas.js';

/** `GET /v1/account/keys`: the caller's live keys (a key/JWT caller: its workspace's only). */
export function registerListKeysRoute(app: App): void {
  app.get(
    '/v1/account/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'List API keys (never the secret)',
        security: SECURITY,
        querystring: ListQuery,
        response: { 200: PageOf(ApiKeySchema) },
      },
    },
    async (request) => listKeysForCaller(app, request, request.query),
  );
}
