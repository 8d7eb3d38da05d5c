import type { App } from '../app.js';
import { registerAuthRoutes } from './auth/index.js';
import { registerKeyRoutes } from './keys/index.js';
import { registerOpsRoutes } from './ops/index.js';
import { registerSandboxRoutes } from './sandboxes/index.js';
import { registerSnapshotRoutes } from './snapshots/index.js';
import { registerSshKeyRoutes } from './ssh-keys/index.js';
import { registerTemplateRoutes } from './templates/index.js';
import { registerWorkspacesRoutes } from './workspaces/index.js';

/*
 * Every route registrar, one line per resource folder (STYLE.md). S2 and S3 (and later
 * issues): add your `import { registerXRoutes } from './x/index.js'` above and one line
 * below; keep it one line per resource.
 */

/** Registers every route of the API on `app`. */
export async function registerRoutes(app: App): Promise<void> {
  await registerOpsRoutes(app);
  // --- resource routes (one line each) ---
  await registerAuthRoutes(app);
  await registerKeyRoutes(app);
  await registerWorkspacesRoutes(app);
  await registerSandboxRoutes(app);
  await registerSnapshotRoutes(app);
  await registerTemplateRoutes(app);
  await registerSshKeyRoutes(app);
}
