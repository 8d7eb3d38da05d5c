import type { App } from '../../app.js';
import { snapshotsOf } from '../../services/snapshots.js';
import { registerSnapshotCrudRoutes } from './crud.js';
import { registerSnapshotDownloadRoutes } from './download.js';
import { registerSnapshotRestoreRoutes } from './restore.js';

/**
 * `/v1/snapshots/{id}…`: get, delete, download (signed URL) and the archive it points at,
 * restore. (Creating and listing hang off the sandbox: routes/sandboxes/snapshots.ts.)
 */
export async function registerSnapshotRoutes(app: App): Promise<void> {
  registerSnapshotCrudRoutes(app);
  registerSnapshotDownloadRoutes(app);
  registerSnapshotRestoreRoutes(app);
  // Settle snapshots a previous process left half-made, once the store is there.
  app.addHook('onReady', async () => {
    await snapshotsOf(app).settleInterrupted();
  });
}
