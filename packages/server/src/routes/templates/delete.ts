import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { TemplateService } from '../../services/templates.js';
import { SECURITY, TemplateParams, WorkspaceQuery } from './schemas.js';

/** `DELETE /v1/templates/{id}`: a custom template (developers and up). */
export function registerDeleteTemplateRoute(app: App, templates: TemplateService): void {
  app.delete(
    '/v1/templates/:id',
    {
      config: { scope: 'sandbox:delete' },
      schema: {
        tags: ['templates'],
        summary: 'Delete a custom template',
        description:
          'Built-ins: 403 FORBIDDEN. Used by a sandbox that is not deleted: 409 CONFLICT naming them. A build under way is stopped. The built tree is removed unless another template (an identical build) shares it.',
        security: SECURITY,
        params: TemplateParams,
        querystring: WorkspaceQuery,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await templates.remove(request, request.params.id, request.query.workspace_id);
      return reply.code(204).send(null);
    },
  );
}
