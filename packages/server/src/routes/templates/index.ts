import type { App } from '../../app.js';
import { RawBody } from '../../services/sandboxes/files.js';
import { TemplateService } from '../../services/templates.js';
import { IMAGE_CONTENT_TYPES, registerCreateTemplateRoute } from './create.js';
import { registerDeleteTemplateRoute } from './delete.js';
import { registerGetTemplateRoute } from './get.js';
import { registerListTemplatesRoute } from './list.js';

/**
 * `/v1/templates…`: list, build or import, get with build log, delete (issue 4 item 6). Builds
 * run in the background of this server: on start-up, rows a previous run left `building` are
 * marked failed; on close, builds under way are stopped and recorded as failed.
 */
export async function registerTemplateRoutes(app: App): Promise<void> {
  const templates = new TemplateService(app.sandboxes, app.audit);
  app.addHook('onReady', async () => {
    const interrupted = await templates.markInterrupted();
    if (interrupted > 0) app.log.warn({ templates: interrupted }, 'template builds interrupted by a restart');
  });
  app.addHook('onClose', async () => templates.builds.close());

  // Image uploads are raw bodies: a context of their own, whose tar parsers pass the stream on
  // uncounted (the service counts it against the upload limit) and whose JSON keeps the app's.
  await app.register(async (scope) => {
    scope.addContentTypeParser(IMAGE_CONTENT_TYPES, (_request, payload, done) =>
      done(null, new RawBody(payload)),
    );
    // A body cut off at the limit is not read to its end: close the connection after the 413.
    scope.addHook('onSend', async (_request, reply) => {
      if (reply.statusCode === 413) reply.header('connection', 'close');
    });
    const routes = scope as App;
    registerListTemplatesRoute(routes, templates);
    registerCreateTemplateRoute(routes, templates);
    registerGetTemplateRoute(routes, templates);
    registerDeleteTemplateRoute(routes, templates);
  });
}
