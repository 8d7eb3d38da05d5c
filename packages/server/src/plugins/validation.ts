import { createRequire } from 'node:module';
import type { FastifyInstance, FastifySchema } from 'fastify';

type ValidateFn = (data: unknown) => boolean;
type BuildValidator = (route: { schema: FastifySchema; httpPart?: string }) => ValidateFn;
type CompilerFactory = () => (
  externalSchemas: Record<string, unknown>,
  options: { customOptions: Record<string, unknown> },
) => BuildValidator;

// Fastify's own Ajv compiler (with ajv-formats), resolved from Fastify's install so we use the
// exact copy Fastify uses without a second dependency.
const requireFromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
const AjvCompiler = requireFromFastify('@fastify/ajv-compiler') as CompilerFactory;

const COMMON = { removeAdditional: false, useDefaults: true, allErrors: false };

/**
 * Validation: bodies are checked strictly (no type coercion, no silent removal of unknown
 * fields); querystring, params and headers coerce strings ("10" → 10) as URLs need.
 */
export function registerValidation(app: FastifyInstance): void {
  const factory = AjvCompiler();
  const strict = factory({}, { customOptions: { ...COMMON, coerceTypes: false } });
  const coercing = factory({}, { customOptions: { ...COMMON, coerceTypes: 'array' } });
  app.setValidatorCompiler((route) => (route.httpPart === 'body' ? strict(route) : coercing(route)));
  // A route whose JSON body has only optional fields takes no body at all (`curl -X POST`
  // without `-d`) as `{}` rather than failing "body must be object". The OpenAPI document
  // marks those bodies optional to match (see openapi.ts).
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined && request.body !== null) return;
    const schema = request.routeOptions.schema?.body as { type?: string; required?: string[] } | undefined;
    if (schema?.type === 'object' && !(schema.required?.length ?? 0)) request.body = {};
  });
}
