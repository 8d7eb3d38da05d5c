import type { App } from '../../app.js';

/** `GET /v1/sandboxes/{id}/ws`: the multiplexed WebSocket (docs/ws-protocol.md). Being built. */
export function registerSandboxWsRoutes(app: App): void {
  void app;
}
