import type { App } from '../../app.js';
import type { TemplateService } from '../../services/templates.js';
import { PageOf, SECURITY, TemplateListQuery, TemplateSchema } from './schemas.js';

/** `GET /v1/templates`: the built-ins (on the first page), then the workspace's custom templates. */
export function registerListTemplatesRoute(app: App, templates: TemplateService): void {
  app.get(
    '/v1/templates',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['templates'],
        summary: 'Built-in templates and the custom templates of a workspace (newest first)',
        description:
          "The built-ins come first on the first page: `ready` once built on this server, else `available` (the first sandbox builds it). Custom templates are the key's workspace's (or `workspace_id`'s, or your personal one's).",
        security: SECURITY,
        querystring: TemplateListQuery,
        response: { 200: PageOf(TemplateSchema) },
      },
    },
    async (request) => templates.list(request, request.query),
  );
}
