import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { RawBody } from '../../services/sandboxes/files.js';
import type { TemplateService } from '../../services/templates.js';
import type { CreateTemplateInput } from '../../services/templates-spec.js';
import { CreateTemplateBody, ImportTemplateQuery, SECURITY, TemplateSchema } from './schemas.js';

/** The body types an image upload may come as. */
export const IMAGE_CONTENT_TYPES = ['application/x-tar', 'application/octet-stream'];

// No `type`: the validator sees the stream wrapper, not bytes; the description is for the docs.
const ImageBody = { description: 'An OCI image layout or `docker save` tarball (raw bytes).' };

/**
 * `POST /v1/templates`: a JSON definition (Debian packages + run steps) is built, an image
 * tarball body (`?name=`) is imported — both in the background: the answer is 202 with the
 * template `building`; poll `GET /v1/templates/{id}` for `ready` or `failed` and the log.
 * Registered in a context whose parsers hand tar bodies over as streams.
 */
export function registerCreateTemplateRoute(app: App, templates: TemplateService): void {
  app.post(
    '/v1/templates',
    {
      config: { scope: 'sandbox:create' },
      schema: {
        tags: ['templates'],
        summary: 'Build a template from Debian packages, or import an image tarball',
        description:
          'JSON body: Debian (bookworm by default) with the base set, `packages` and `run` steps. ' +
          'Or an OCI image layout / `docker save` tarball as the raw body (`Content-Type: application/x-tar`) with `?name=`; ' +
          'larger than the upload limit: 413. Answers 202 with the template `building`. ' +
          'A name is unique in its workspace (409 CONFLICT), and may not be a built-in name or start with `tpl_`.',
        security: SECURITY,
        querystring: Type.Partial(ImportTemplateQuery),
        body: {
          content: {
            'application/json': { schema: CreateTemplateBody },
            ...Object.fromEntries(IMAGE_CONTENT_TYPES.map((type) => [type, { schema: ImageBody }])),
          },
        } as unknown as typeof CreateTemplateBody,
        response: { 202: TemplateSchema },
      },
    },
    async (request, reply) => {
      const body = request.body as unknown;
      let view: Awaited<ReturnType<TemplateService['createBuild']>>;
      if (body instanceof RawBody) {
        const { name, workspace_id } = request.query;
        if (name === undefined) {
          throw apiError('VALIDATION_ERROR', {
            in: 'querystring',
            fields: [{ path: '/name', message: 'is required with an image tarball body' }],
          });
        }
        view = await templates.createImport(
          request,
          { name, ...(workspace_id ? { workspace_id } : {}) },
          body.stream,
        );
      } else {
        view = await templates.createBuild(request, {
          ...(body as CreateTemplateInput),
          ...(request.query.workspace_id && !(body as CreateTemplateInput).workspace_id
            ? { workspace_id: request.query.workspace_id }
            : {}),
        });
      }
      return reply.code(202).send(view);
    },
  );
}
