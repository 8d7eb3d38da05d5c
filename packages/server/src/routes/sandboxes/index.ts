import type { App } from '../../app.js';
import { registerSandboxCrudRoutes } from './crud.js';
import { registerSandboxEnvRoutes } from './env.js';
import { registerSandboxEventsRoutes } from './events.js';
import { registerSandboxExecRoutes } from './exec.js';
import { registerSandboxFilesRoutes } from './files.js';
import { registerSandboxLifecycleRoutes } from './lifecycle.js';
import { registerSandboxPortRoutes } from './ports.js';
import { registerSandboxSnapshotsRoutes } from './snapshots.js';
import { registerSandboxTerminalRoutes } from './terminal.js';
import { registerSandboxTokenRoutes } from './tokens.js';
import { registerSandboxWsRoutes } from './ws.js';

/** `/v1/sandboxes…`: one file per feature. */
export async function registerSandboxRoutes(app: App): Promise<void> {
  registerSandboxCrudRoutes(app);
  registerSandboxLifecycleRoutes(app);
  registerSandboxEnvRoutes(app);
  registerSandboxExecRoutes(app);
  // Files take raw bodies: their own encapsulated context with their own content-type parsers.
  await app.register(async (scope) => registerSandboxFilesRoutes(scope as App));
  registerSandboxSnapshotsRoutes(app);
  registerSandboxEventsRoutes(app);
  registerSandboxTerminalRoutes(app);
  registerSandboxWsRoutes(app);
  registerSandboxPortRoutes(app);
  registerSandboxTokenRoutes(app);
}
