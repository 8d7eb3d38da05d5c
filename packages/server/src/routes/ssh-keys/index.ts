import type { App } from '../../app.js';

/** `GET/POST /v1/account/ssh-keys`, `DELETE /v1/account/ssh-keys/{id}`. Being built. */
export async function registerSshKeyRoutes(app: App): Promise<void> {
  void app;
}
