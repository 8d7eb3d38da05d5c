import type { App } from '../app.js';

/**
 * The preview proxy: requests whose Host is `{port}-{sandbox_id}.{preview_domain}` (and the
 * `oc-`/`claw-` aliases) are answered by the sandbox's port, through `app.frontDoor`.
 * (Issue 5, item 3 — being built.)
 */
export function registerPreviewProxy(app: App): void {
  void app;
}
