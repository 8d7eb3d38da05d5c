import type { App } from '../../app.js';

/** `/v1/templates…`: list, build or import, get with build log, delete (issue 4 item 6). */
export async function registerTemplateRoutes(app: App): Promise<void> {
  void app;
}
