import type { App } from '../../app.js';

/** `POST …/tunnel`, `GET …/tokens`, `DELETE …/tokens/{token_id}`. Being built. */
export function registerSandboxTokenRoutes(app: App): void {
  void app;
}
