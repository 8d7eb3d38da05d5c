import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ERRORS } from './errors.js';

/** The session cookie the dashboard uses (set by the auth routes). */
export const SESSION_COOKIE_NAME = 'corral_session';

/** The one error shape, as a schema: use it in route `response` maps where useful. */
export const ErrorResponseSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Enum(Object.keys(ERRORS), { description: 'A code from the error catalogue.' }),
      message: Type.String({ description: 'Human readable; do not parse.' }),
      details: Type.Object({}, { additionalProperties: true }),
    }),
    request_id: Type.String({ description: 'Same as the X-Request-Id response header.' }),
  },
  { $id: 'Error', title: 'Error' },
);

/** `security` for routes that accept every credential (API key, JWT, session cookie). */
export const AUTHENTICATED = [{ apiKey: [] }, { jwt: [] }, { session: [] }];

/** The part of an OpenAPI request body the document transform reads. */
interface RequestBody {
  required?: boolean;
  content?: Record<string, { schema?: { required?: string[] } }>;
}

/**
 * Registers @fastify/swagger (OpenAPI 3.1 from the route schemas; every operation gets the
 * Error response as its `default`), `GET /v1/openapi.json`, and the Swagger UI at `/docs`.
 * Must run before routes are added.
 */
export async function registerOpenApi(app: FastifyInstance, options: { publicUrl: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Corral API',
        version: '1.0.0',
        description: 'Isolated, disposable Linux sandboxes for AI agents.',
      },
      servers: [{ url: options.publicUrl }],
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key (`crl_sk_…`), also as `Authorization: ApiKey …`.',
          },
          jwt: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A JWT from POST /v1/auth/token.',
          },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: SESSION_COOKIE_NAME,
            description: 'Dashboard session.',
          },
        },
      },
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
      const openapiObject = documentObject.openapiObject;
      const doc = openapiObject as {
        components?: { schemas?: Record<string, unknown> };
        paths?: Record<
          string,
          Record<string, { responses?: Record<string, unknown>; requestBody?: RequestBody }>
        >;
      };
      doc.components ??= {};
      doc.components.schemas = { ...doc.components.schemas, Error: stripId(ErrorResponseSchema) };
      for (const methods of Object.values(doc.paths ?? {})) {
        for (const operation of Object.values(methods)) {
          if (!operation || typeof operation !== 'object') continue;
          // A JSON body whose fields are all optional may be left out (the routes take no body
          // as {}), so the document must not call it required.
          const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
          if (operation.requestBody && bodySchema && !(bodySchema.required?.length ?? 0)) {
            operation.requestBody.required = false;
          }
          operation.responses ??= {};
          operation.responses.default ??= {
            description: 'Error',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          };
        }
      }
      return openapiObject;
    },
  });
  app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );
  // The UI plugin's routes (/docs, its assets) take no route options: mark each one public as
  // it is added, inside a context of their own.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, public: true };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { url: '/v1/openapi.json' } });
  });
}

function stripId(schema: object): object {
  const { $id: _id, ...rest } = schema as Record<string, unknown>;
  return rest;
}
