import type { App } from '../../app.js';

/** Routes: start, stop, pause, resume, hibernate, keepalive, PATCH (issue 4 item 1-2). */
export function registerSandboxLifecycleRoutes(app: App): void {
  void app;
}
