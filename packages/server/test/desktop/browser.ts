import { type Browser, chromium, type Page } from 'playwright-core';
import { decodePng, shareOfColour } from './png.js';

/** Debian's Chromium (installed for the tests). */
const CHROMIUM = '/usr/bin/chromium';
/** The browser window: the desktop's own size, so the whole screen is in view. */
const VIEWPORT = { width: 1280, height: 800 };
/** How long noVNC may take to connect and draw (generous: under gVisor on a loaded host it is slow). */
const WAIT_MS = 60_000;

/** Headless Chromium (as root it needs --no-sandbox). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** What a person saw of the desktop: the screenshot and the share of pixels of each colour asked. */
export interface DesktopView {
  png: Buffer;
  /** Per `#rrggbb` asked: the share (0..1) of the screenshot's pixels of that colour. */
  shares: Record<string, number>;
  /** The classes of `<html>`: noVNC marks its connection state there (`noVNC_connected`). */
  htmlClass: string;
  /** The page's URL after any redirect. */
  url: string;
}

/** noVNC open in a browser tab. */
export interface DesktopTab {
  page: Page;
  /**
   * Takes screenshots until each colour of `wanted` (`#rrggbb` → least share of the pixels)
   * fills its share, or the wait runs out; answers the last one.
   */
  look(wanted: Record<string, number>): Promise<DesktopView>;
  close(): Promise<void>;
}

/** Opens `url` (a `vnc_url`) in a fresh browser context and waits until noVNC says it is connected. */
export async function openDesktop(browser: Browser, url: string): Promise<DesktopTab> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForSelector('html.noVNC_connected', { state: 'attached', timeout: WAIT_MS });
    return {
      page,
      look: (wanted) => look(page, wanted),
      close: () => context.close(),
    };
  } catch (err) {
    await context.close();
    throw err;
  }
}

async function look(page: Page, wanted: Record<string, number>): Promise<DesktopView> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const png = await page.screenshot({ type: 'png' });
    const image = decodePng(png);
    const shares = Object.fromEntries(Object.keys(wanted).map((hex) => [hex, shareOfColour(image, hex)]));
    const htmlClass = (await page.evaluate('document.documentElement.className')) as string;
    const seen = Object.entries(wanted).every(([hex, min]) => (shares[hex] ?? 0) >= min);
    if (seen || Date.now() > deadline) return { png, shares, htmlClass, url: page.url() };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Opens `url`, looks once for `wanted` (see `DesktopTab.look`) and closes the tab. */
export async function viewDesktop(
  browser: Browser,
  url: string,
  wanted: Record<string, number>,
): Promise<DesktopView> {
  const tab = await openDesktop(browser, url);
  try {
    return await tab.look(wanted);
  } finally {
    await tab.close();
  }
}
