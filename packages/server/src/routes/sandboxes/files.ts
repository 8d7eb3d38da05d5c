import type { App } from '../../app.js';

/** Routes: files, archive, git diff (issue 4 item 5). */
export function registerSandboxFilesRoutes(app: App): void {
  void app;
}
