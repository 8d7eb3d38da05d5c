import type { App } from '../../app.js';
import type { TemplateService } from '../../services/templates.js';
import { SECURITY, TemplateParams, TemplateSchema, WorkspaceQuery } from './schemas.js';

/** `GET /v1/templates/{id}`: one template with its build log (a built-in by name). */
export function registerGetTemplateRoute(app: App, templates: TemplateService): void {
  app.get(
    '/v1/templates/:id',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['templates'],
        summary: 'One template, with its build or import log',
        security: SECURITY,
        params: TemplateParams,
        querystring: WorkspaceQuery,
        response: { 200: TemplateSchema },
      },
    },
    async (request) => templates.get(request, request.params.id, request.query.workspace_id),
  );
}
