import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket as NodeWebSocket } from 'ws';
import {
  Corral as BrowserCorral,
  ConnectionError,
  CorralError,
  type Terminal,
  type WebSocketLike,
} from '../src/index.js';
import { Corral } from '../src/node.js';
import { type SdkTestServer, startServer, waitFor } from './support/server.js';

/** Everything `terminal` printed so far, as text (kept up to date). */
function transcript(terminal: Terminal): { text: string } {
  const out = { text: '' };
  const decoder = new TextDecoder();
  terminal.onData((chunk) => {
    out.text += decoder.decode(chunk, { stream: true });
  });
  return out;
}

describe('sdk: terminal (WebSocket PTY)', () => {
  let server: SdkTestServer;
  let corral: Corral;

  beforeAll(async () => {
    server = await startServer();
    corral = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('types into a shell, resizes, detaches, reattaches with the scrollback, and kills it', async () => {
    const box = await corral.sandboxes.create({ template: 'base' });
    const terminal = await box.terminal({ cols: 100, rows: 30 });
    expect(terminal.sessionId).toEqual(expect.any(String));
    expect([terminal.cols, terminal.rows]).toEqual([100, 30]);
    const out = transcript(terminal);
    terminal.write('echo "answer=$((6*7))"\n');
    await waitFor(async () => out.text.includes('answer=42'), 'the shell to answer');
    terminal.resize(120, 40);
    terminal.write('stty size\n');
    await waitFor(async () => out.text.includes('40 120'), 'the new size');

    expect((await box.terminalSessions()).map((s) => s.id)).toEqual([terminal.sessionId]);
    terminal.close();
    expect(await terminal.exited).toBeNull();

    const again = await box.terminal({ session: terminal.sessionId });
    const replay = transcript(again);
    await waitFor(async () => replay.text.includes('answer=42'), 'the scrollback');
    const chunks: Uint8Array[] = [];
    const reading = (async () => {
      for await (const chunk of again) chunks.push(chunk);
    })();
    await again.kill();
    expect(await again.exited).toMatchObject({ signal: expect.anything() });
    await reading;
    expect(await box.terminalSessions()).toEqual([]);
    await box.destroy();
  });

  it('works with a WebSocket passed to the browser entry, and fails clearly without one', async () => {
    const key = (await server.newKey()).key;
    const browser = new BrowserCorral({
      baseUrl: server.url,
      apiKey: key,
      WebSocket: NodeWebSocket as unknown as WebSocketLike,
    });
    const box = await browser.sandboxes.create({ template: 'base' });
    const terminal = await box.terminal();
    const out = transcript(terminal);
    terminal.write('exit 5\n');
    expect(await terminal.exited).toEqual({ exitCode: 5, signal: null });
    expect(out.text).toContain('exit');

    vi.stubGlobal('WebSocket', undefined);
    const none = new BrowserCorral({ baseUrl: server.url, apiKey: key });
    vi.unstubAllGlobals();
    const err = await (await none.sandboxes.get(box.id)).terminal().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorralError);
    expect(err).toMatchObject({ code: 'NO_WEBSOCKET' });
    await box.stop();
    await expect(box.terminal()).rejects.toBeInstanceOf(ConnectionError);
    await box.destroy();
  });
});
