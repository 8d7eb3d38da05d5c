import type { App } from '../../app.js';

/** Routes: exec, processes, signal (issue 4 item 4). */
export function registerSandboxExecRoutes(app: App): void {
  void app;
}
