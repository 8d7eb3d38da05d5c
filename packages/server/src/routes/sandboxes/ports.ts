import type { App } from '../../app.js';

/** `GET …/ports` (`/services`), `POST/DELETE …/ports/{port}/protect`, `POST …/port-forward`. Being built. */
export function registerSandboxPortRoutes(app: App): void {
  void app;
}
