import type { Runtime } from '@corral/runtime';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { DESKTOP_BACKGROUND, RFB_PORT } from '../../src/services/sandboxes/desktop-script.js';
import { VNC_PORT } from '../../src/services/sandboxes/view.js';
import type { OwnerKey } from '../support/app.js';
import { createGvisorTestApp, type GvisorTestApp } from '../support/gvisor-app.js';
import { launchBrowser, viewDesktop } from './browser.js';

/**
 * The desktop on the gVisor isolation (SQLite only: the store does not matter here): it comes
 * up under gVisor's kernel, noVNC shows it through the preview proxy, and a hibernate/resume
 * (which keeps memory there) finds it still running rather than starting a second one.
 */
describe('desktop on gvisor', () => {
  let gvisor: GvisorTestApp | undefined;
  let runtime: Runtime;
  let app: App;
  let owner: OwnerKey;
  let browser: Browser;
  let appPort = 0;

  const api = (method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({ method, url, headers: owner.headers, ...(payload ? { payload } : {}) });
  const listening = async (id: string) => (await runtime.ports(id)).map((p) => p.port);

  beforeAll(async () => {
    gvisor = await createGvisorTestApp({ listen: true });
    ({ app, runtime, owner, port: appPort } = gvisor);
    browser = await launchBrowser();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await gvisor?.close();
  }, 120_000);

  it('serves the desktop, and a hibernate/resume keeps the same one', async () => {
    const res = await api('POST', '/v1/sandboxes', { gui: true });
    expect(res.statusCode, res.body).toBe(201);
    const sandbox = res.json();
    expect(sandbox).toMatchObject({ status: 'running', gui: true, isolation: 'gvisor', error: null });
    expect(await listening(sandbox.id)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));

    const forward = await api('POST', `/v1/sandboxes/${sandbox.id}/port-forward`, { port: VNC_PORT });
    expect(forward.statusCode, forward.body).toBe(201);
    const url = new URL(forward.json().url);
    url.port = String(appPort);
    const view = await viewDesktop(browser, url.toString(), { [DESKTOP_BACKGROUND]: 0.4 });
    expect(view.htmlClass).toContain('noVNC_connected');
    expect(view.shares[DESKTOP_BACKGROUND]).toBeGreaterThanOrEqual(0.4);
    const hibernated = await api('POST', `/v1/sandboxes/${sandbox.id}/hibernate`);
    expect(hibernated.statusCode, hibernated.body).toBe(200);
    const resumed = await api('POST', `/v1/sandboxes/${sandbox.id}/resume`);
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect(resumed.json()).toMatchObject({ status: 'running', error: null });
    expect(await listening(sandbox.id)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
  }, 600_000);
});
