import type { App } from '../../app.js';
import { registerMemberRoutes } from './members.js';
import { registerWorkspaceRoutes } from './workspaces.js';

/** `/v1/workspaces` and their members. */
export async function registerWorkspacesRoutes(app: App): Promise<void> {
  registerWorkspaceRoutes(app);
  registerMemberRoutes(app);
}
