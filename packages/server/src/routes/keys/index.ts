import type { App } from '../../app.js';
import { registerCreateKeyRoute } from './create.js';
import { registerListKeysRoute } from './list.js';
import { registerRevokeKeyRoute } from './revoke.js';

/** `/v1/account/keys`: list, create, revoke. */
export async function registerKeyRoutes(app: App): Promise<void> {
  registerListKeysRoute(app);
  registerCreateKeyRoute(app);
  registerRevokeKeyRoute(app);
}
