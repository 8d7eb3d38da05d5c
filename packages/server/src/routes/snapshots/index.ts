import type { App } from '../../app.js';

/** `/v1/snapshots/{id}…`: get, delete, download (signed URL), restore (issue 4 item 7). */
export async function registerSnapshotRoutes(app: App): Promise<void> {
  void app;
}
