import { Type } from 'typebox';
import type { App } from '../../app.js';
import { createKeyForCaller } from '../../services/keys.js';
import { SECURITY } from '../auth/schemas.js';
import { ApiKeySchema } from './schemas.js';

const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 32,
        description: "A subset of the caller's scopes; default: all of the caller's.",
      }),
    ),
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'Must be in the future.' })),
  },
  { additionalProperties: false },
);

const CreateKeyResponse = Type.Object({
  ...ApiKeySchema.properties,
  key: Type.String({ description: 'The secret: shown this once, never again.' }),
});

/** `POST /v1/account/keys`: a new key, its secret in the answer once. */
export function registerCreateKeyRoute(app: App): void {
  app.post(
    '/v1/account/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Create an API key',
        security: SECURITY,
        body: CreateKeyBody,
        response: { 201: CreateKeyResponse },
      },
    },
    async (request, reply) => {
      const created = await createKeyForCaller(app, request, request.body);
      reply.code(201);
      return created;
    },
  );
}
