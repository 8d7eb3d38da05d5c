import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDesktop } from '../../src/services/sandboxes/desktop.js';
import { DESKTOP_BACKGROUND, RFB_PORT } from '../../src/services/sandboxes/desktop-script.js';
import { VNC_PORT } from '../../src/services/sandboxes/view.js';
import { createOwnerKey, createTestApp, expectError, type OwnerKey, type TestApp } from '../support/app.js';
import { runIn } from '../templates/support.js';
import { type DesktopView, launchBrowser, openDesktop, viewDesktop } from './browser.js';
import { getVia, importTemplate } from './helpers.js';

/** Where the suite leaves one screenshot of the desktop, for a person to look at. */
const SCREENSHOT = '/tmp/corral-desktop.png';
/**
 * What the screen must show: the background on at least 40% of it, and the xterm's black
 * window on at least 10% (80x24 characters: about a third of the screen).
 */
const DESKTOP = { [DESKTOP_BACKGROUND]: 0.4, '#000000': 0.1 };

/** A background the test types into the desktop's xterm. */
const TYPED_BACKGROUND = '#8c2d5b';

/** Asserts a view shows the connected desktop. */
function expectDesktop(view: DesktopView): void {
  expect(view.htmlClass).toContain('noVNC_connected');
  for (const [hex, min] of Object.entries(DESKTOP)) {
    expect(view.shares[hex], `share of ${hex} in the screenshot`).toBeGreaterThanOrEqual(min);
  }
}

describe('desktop: gui sandboxes serve a VNC desktop at vnc_url', () => {
  let t: TestApp;
  let owner: OwnerKey;
  let browser: Browser;
  let appPort = 0;
  const sandboxes: string[] = [];

  const api = (method: 'GET' | 'POST', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: owner.headers, ...(payload ? { payload } : {}) });
  const create = async (payload: object) => {
    const res = await api('POST', '/v1/sandboxes', payload);
    if (res.statusCode === 201) sandboxes.push(res.json().id);
    return res;
  };
  const listening = async (id: string) => (await t.engine!.runtime.ports(id)).map((p) => p.port);

  /**
   * The vnc_url as a person opens it: on the port the app listens on, through the preview
   * proxy, with a port token for 6080 (`?corral_token=`, exchanged for the preview cookie that
   * noVNC's WebSocket to `/websockify` then carries).
   */
  const browserUrl = async (id: string, vncUrl: string) => {
    const { token } = await t.app.sandboxTokens.mint({
      sandboxId: id,
      workspaceId: owner.workspaceId,
      kind: 'port',
      port: VNC_PORT,
      createdBy: owner.userId,
    });
    const url = new URL(vncUrl);
    url.port = String(appPort);
    url.searchParams.set('corral_token', token);
    return url.toString();
  };
  const previewGet = (url: string, headers: Record<string, string> = {}) => getVia(appPort, url, headers);

  beforeAll(async () => {
    t = await createTestApp({ runtime: true });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    appPort = (t.app.server.address() as AddressInfo).port;
    owner = await createOwnerKey(t.store, t.app.audit);
    browser = await launchBrowser();
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    for (const id of sandboxes) await api('POST', `/v1/sandboxes/${id}/stop`).catch(() => undefined);
    await t?.close();
  }, 120_000);

  let gui = '';
  let vncUrl = '';

  it('creates a gui sandbox whose desktop is up when create answers; noVNC in Chromium shows it', async () => {
    const res = await create({ gui: true });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    gui = body.id;
    expect(body).toMatchObject({ status: 'running', gui: true, template: 'gui', error: null });
    expect(body.vnc_url).toBe(
      `http://${VNC_PORT}-${gui}.localhost:8080/vnc.html?autoconnect=1&resize=remote`,
    );
    vncUrl = body.vnc_url;
    expect(await listening(gui)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
    // The VNC server answers on loopback only; noVNC is what the preview proxy reaches.
    const rfb = (await t.engine!.runtime.ports(gui)).find((p) => p.port === RFB_PORT);
    expect(rfb?.address).toBe('127.0.0.1');

    const tab = await openDesktop(browser, await browserUrl(gui, vncUrl));
    try {
      const view = await tab.look(DESKTOP);
      await writeFile(SCREENSHOT, view.png);
      expectDesktop(view);
      // The token was exchanged for the preview cookie: the page's URL no longer carries it.
      expect(new URL(view.url).searchParams.has('corral_token')).toBe(false);
      expect(new URL(view.url).host).toBe(`${VNC_PORT}-${gui}.localhost:${appPort}`);

      // Keyboard and mouse reach the desktop: typed into the xterm, a command repaints the screen.
      await tab.page.mouse.click(400, 300);
      await tab.page.keyboard.type(`xsetroot -solid '${TYPED_BACKGROUND}'\n`, { delay: 20 });
      const typed = await tab.look({ [TYPED_BACKGROUND]: 0.4 });
      await writeFile(SCREENSHOT.replace('.png', '-typed.png'), typed.png);
      expect(typed.shares[TYPED_BACKGROUND], 'share of the typed background').toBeGreaterThanOrEqual(0.4);
    } finally {
      await tab.close();
    }
  }, 600_000);

  it('keeps vnc_url private: no credential is 401, a token for another port or sandbox is refused', async () => {
    const bare = await previewGet(vncUrl, { accept: 'application/json' });
    expect(bare.statusCode, bare.body).toBe(401);
    expect(JSON.parse(bare.body).error.code).toBe('UNAUTHORIZED');
    const otherPort = await t.app.sandboxTokens.mint({
      sandboxId: gui,
      workspaceId: owner.workspaceId,
      kind: 'port',
      port: 3000,
      createdBy: owner.userId,
    });
    const wrong = new URL(vncUrl);
    wrong.searchParams.set('corral_token', otherPort.token);
    expect((await previewGet(wrong.toString(), { accept: 'application/json' })).statusCode).toBe(401);
    // The proxy answers the noVNC page itself for the owner's API key (developer, sandbox:exec).
    const page = await previewGet(vncUrl, owner.headers);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('noVNC');
  });

  it('leaves nothing that keeps the sandbox awake; starting it again restarts only what is missing', async () => {
    const runtime = t.engine!.runtime;
    const sh = async (script: string) => (await runIn(runtime, gui, 'sh', ['-c', script])).stdout.trim();
    const pids = () =>
      sh('for p in Xvfb openbox xterm x11vnc websockify; do printf "%s " "$(pgrep -o -x $p)"; done');
    // No API-started command runs on behalf of the desktop: the idle timeout still applies.
    expect((await runtime.processes(gui)).filter((p) => !p.tty)).toEqual([]);
    const before = await pids();
    expect(
      before.split(' ').every((pid) => /^[0-9]+$/.test(pid)),
      before,
    ).toBe(true);

    const row = (await t.app.sandboxes.find(gui))!;
    expect(await startDesktop(t.app.sandboxes, row, 'system')).toMatchObject({
      status: 'ready',
      alreadyRunning: true,
    });
    expect(await pids()).toBe(before);

    // noVNC's server dies: the next start brings back that piece alone, on the same display.
    await sh('pkill -x websockify; while pgrep -x websockify >/dev/null; do sleep 0.05; done');
    expect(await listening(gui)).not.toContain(VNC_PORT);
    expect(await startDesktop(t.app.sandboxes, row, 'system')).toMatchObject({
      status: 'ready',
      alreadyRunning: false,
    });
    expect(await listening(gui)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
    const after = (await pids()).split(' ');
    expect(after.slice(0, 4)).toEqual(before.split(' ').slice(0, 4));
    expect(after[4]).not.toBe(before.split(' ')[4]);
  });

  it('stop then start brings the desktop back; the port-forward URL opens it', async () => {
    const stopped = await api('POST', `/v1/sandboxes/${gui}/stop`);
    expect(stopped.statusCode, stopped.body).toBe(200);
    expect(stopped.json().status).toBe('stopped');
    const started = await api('POST', `/v1/sandboxes/${gui}/start`);
    expect(started.statusCode, started.body).toBe(200);
    expect(started.json()).toMatchObject({ status: 'running', error: null });
    expect(await listening(gui)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
    // This time as the API hands it out: the port-forward URL (the preview root with a token)
    // opens noVNC's index, which goes on to the connected viewer.
    const forward = await api('POST', `/v1/sandboxes/${gui}/port-forward`, { port: VNC_PORT });
    expect(forward.statusCode, forward.body).toBe(201);
    const url = new URL(forward.json().url);
    expect(url.pathname).toBe('/');
    url.port = String(appPort);
    const view = await viewDesktop(browser, url.toString(), DESKTOP);
    expectDesktop(view);
    expect(new URL(view.url).pathname).toBe('/vnc.html');
  }, 120_000);

  it('hibernate then resume brings the desktop back', async () => {
    const hibernated = await api('POST', `/v1/sandboxes/${gui}/hibernate`);
    expect(hibernated.statusCode, hibernated.body).toBe(200);
    const resumed = await api('POST', `/v1/sandboxes/${gui}/resume`);
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect(resumed.json()).toMatchObject({ status: 'running', error: null });
    expect(await listening(gui)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
  }, 120_000);

  it('a snapshot restore brings the desktop back, in the same sandbox and in a new one', async () => {
    const snap = await api('POST', `/v1/sandboxes/${gui}/snapshots`, {});
    expect(snap.statusCode, snap.body).toBe(201);
    const snapshotId = snap.json().id as string;
    const same = await api('POST', `/v1/snapshots/${snapshotId}/restore`, { sandbox_id: gui });
    expect(same.statusCode, same.body).toBe(200);
    expect(same.json()).toMatchObject({ id: gui, status: 'running', gui: true, error: null });
    expect(await listening(gui)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));

    const fresh = await api('POST', `/v1/snapshots/${snapshotId}/restore`, {});
    expect(fresh.statusCode, fresh.body).toBe(201);
    const copy = fresh.json();
    sandboxes.push(copy.id);
    expect(copy).toMatchObject({ status: 'running', gui: true, template: 'gui', error: null });
    expect(await listening(copy.id)).toEqual(expect.arrayContaining([VNC_PORT, RFB_PORT]));
  }, 120_000);

  it('a sandbox without gui has vnc_url null and no desktop; the gui template alone implies it', async () => {
    const plain = await create({ template: 'base' });
    expect(plain.statusCode, plain.body).toBe(201);
    expect(plain.json()).toMatchObject({ gui: false, vnc_url: null });
    expect(await listening(plain.json().id)).not.toContain(VNC_PORT);

    const byTemplate = await create({ template: 'gui' });
    expect(byTemplate.statusCode, byTemplate.body).toBe(201);
    expect(byTemplate.json()).toMatchObject({ gui: true, template: 'gui' });
    expect(byTemplate.json().vnc_url).toMatch(/\/vnc\.html\?autoconnect=1&resize=remote$/);

    const optedOut = await create({ template: 'gui', gui: false });
    expect(optedOut.statusCode, optedOut.body).toBe(201);
    expect(optedOut.json()).toMatchObject({ gui: false, vnc_url: null });
    expect(await listening(optedOut.json().id)).not.toContain(VNC_PORT);
  }, 120_000);

  it('refuses gui: true on a template without the desktop programs (400 at /gui), creating nothing', async () => {
    const before = await api('GET', '/v1/sandboxes');
    const res = await create({ gui: true, template: 'python' });
    const body = expectError(res, 'VALIDATION_ERROR');
    expect(body.error.details.fields).toEqual([
      expect.objectContaining({ path: '/gui', message: expect.stringContaining('/usr/bin/Xvfb') }),
    ]);
    const after = await api('GET', '/v1/sandboxes');
    expect(after.json().data.length).toBe(before.json().data.length);
  });

  it('checks a custom template for the desktop programs: refused without them, tried with them', async () => {
    const importImage = (name: string, files: Record<string, string>) =>
      importTemplate(t.app, owner.headers, name, files);
    const marker = `${Date.now()}-${Math.random()}\n`;
    await importImage('no-desktop', { 'etc/marker': marker });
    const refused = expectError(await create({ gui: true, template: 'no-desktop' }), 'VALIDATION_ERROR');
    expect(refused.error.details.fields).toEqual([
      {
        path: '/gui',
        message: expect.stringContaining(
          'missing /usr/bin/Xvfb, /usr/bin/x11vnc, /usr/bin/websockify, /usr/share/novnc/vnc.html',
        ),
      },
    ]);
    // Without gui the same template is fine.
    expect((await create({ template: 'no-desktop' })).statusCode).toBe(201);

    // The programs' files are there (not working ones, and no shell): the create passes the
    // check, the desktop fails to start, the sandbox runs with the reason in `error`.
    const fake = { 'etc/marker': marker, 'usr/share/novnc/vnc.html': '<html></html>' } as Record<
      string,
      string
    >;
    for (const bin of ['Xvfb', 'x11vnc', 'websockify']) fake[`usr/bin/${bin}`] = '';
    await importImage('fake-desktop', fake);
    const tried = await create({ gui: true, template: 'fake-desktop' });
    expect(tried.statusCode, tried.body).toBe(201);
    expect(tried.json()).toMatchObject({ status: 'running', gui: true });
    expect(tried.json().error).toMatch(/^desktop: /);
  }, 120_000);

  it('a desktop that cannot start leaves the sandbox running, with the reason in error and the audit log', async () => {
    const plain = await create({ template: 'base' });
    const id = plain.json().id as string;
    const row = (await t.app.sandboxes.find(id))!;
    const result = await startDesktop(t.app.sandboxes, { ...row, gui: 1 }, 'system');
    expect(result).toEqual({ status: 'error', error: 'the template has no Xvfb' });
    const now = await api('GET', `/v1/sandboxes/${id}`);
    expect(now.json()).toMatchObject({ status: 'running', error: 'desktop: the template has no Xvfb' });
    const events = await api('GET', `/v1/sandboxes/${id}/events`);
    expect(events.statusCode, events.body).toBe(200);
    expect(events.json().data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'sandbox.desktop',
          details: expect.objectContaining({ status: 'error', error: 'the template has no Xvfb' }),
        }),
      ]),
    );
  });
});
