import type { App } from '../../app.js';

/** Routes: GET …/events (issue 4 item 8). */
export function registerSandboxEventsRoutes(app: App): void {
  void app;
}
