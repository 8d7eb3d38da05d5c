import type { App } from '../../app.js';

/** Routes: …/snapshots on a sandbox (issue 4 item 7). */
export function registerSandboxSnapshotsRoutes(app: App): void {
  void app;
}
