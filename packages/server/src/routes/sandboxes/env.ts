import type { App } from '../../app.js';

/** Routes: GET/PUT/DELETE …/env (issue 4 item 3). */
export function registerSandboxEnvRoutes(app: App): void {
  void app;
}
