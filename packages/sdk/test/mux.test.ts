import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Corral as BrowserCorral } from '../src/index.js';
import {
  Corral,
  CorralError,
  ForbiddenError,
  forwardPort,
  InvalidStateError,
  Sandbox,
  type SandboxConnection,
  SandboxNotFoundError,
  SandboxUnavailableError,
  ValidationError,
} from '../src/node.js';
import type { SandboxContext } from '../src/sandbox.js';

const NodeWebSocket = WebSocket as unknown as SandboxContext['WebSocket'];

import { muxOf } from '../../server/src/services/mux/index.js';
import { type SdkTestServer, startServer, waitFor } from './support/server.js';

const APP = "require('node:http').createServer((q, s) => s.end('hello from ' + q.url)).listen(3000)";
/** A port nothing listens on inside the sandbox. */
const SILENT_PORT = 7072;

/** `GET http://127.0.0.1:<port><path>` with Node's own http client: status and body. */
function httpGet(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('sdk: the multiplexed WebSocket (box.connect)', () => {
  let server: SdkTestServer;
  let corral: Corral;
  let box: Sandbox;
  const connections: SandboxConnection[] = [];
  const connect = async () => {
    const conn = await box.connect();
    connections.push(conn);
    return conn;
  };

  beforeAll(async () => {
    server = await startServer();
    corral = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    box = await corral.sandboxes.create({ template: 'nodejs' });
    const started = await box.exec('sh', [
      '-c',
      `setsid nohup node -e "${APP}" >/dev/null 2>&1 </dev/null &`,
    ]);
    expect(started.exitCode).toBe(0);
    await waitFor(async () => (await box.ports()).some((p) => p.port === 3000 && p.listening), 'port 3000');
  });
  afterAll(async () => {
    await Promise.all(connections.map((c) => c.close()));
    await box?.destroy().catch(() => {});
    await server?.close();
  });

  it('runs a command: stdin in, stdout and stderr apart, the exit code', async () => {
    const conn = await connect();
    const piped = await conn.exec('sh', ['-c', 'tr a-z A-Z; echo "err:$EXTRA" >&2; exit 7'], {
      stdin: 'hello mux\n',
      env: { EXTRA: 'x1' },
    });
    expect(piped.pid).toBeGreaterThan(0);
    expect(await piped.output()).toEqual({
      stdout: 'HELLO MUX\n',
      stderr: 'err:x1\n',
      exitCode: 7,
      signal: null,
      timedOut: false,
    });

    // Written piece by piece, then closed.
    const cat = await conn.exec('cat');
    await cat.write('one ');
    await cat.write(new TextEncoder().encode('two'));
    await cat.closeStdin();
    expect(await cat.output()).toMatchObject({ stdout: 'one two', exitCode: 0 });
    await expect(cat.write('late')).rejects.toBeInstanceOf(CorralError);

    const missing = await conn.exec('no-such-program');
    expect(await missing.output()).toMatchObject({
      exitCode: 127,
      stderr: expect.stringMatching(/no-such-program/),
    });
  });

  it('runs two commands at once on one connection, each with its own input and output', async () => {
    const conn = await connect();
    const a = await conn.exec('cat');
    const b = await conn.exec('sh', ['-c', 'read line; echo "b got $line"']);
    // b finishes while a still waits for its input.
    await b.write('beta\n');
    expect(await b.output()).toMatchObject({ stdout: 'b got beta\n', exitCode: 0 });
    expect(conn.channelCount).toBe(1);
    await a.write('alpha');
    await a.closeStdin();
    expect(await a.output()).toMatchObject({ stdout: 'alpha', exitCode: 0 });
    expect(conn.channelCount).toBe(0);
  });

  it('carries 20 MB of stdout to a slow reader intact, and 2 MB of stdin back', async () => {
    const made = await box.exec('sh', [
      '-c',
      'head -c 20000000 /dev/urandom > /tmp/big && sha256sum /tmp/big',
    ]);
    const expected = made.stdout.split(' ')[0];
    const conn = await connect();
    const window = 64 * 1024;
    const proc = await conn.exec('cat', ['/tmp/big'], { window });
    const hash = createHash('sha256');
    let bytes = 0;
    let chunks = 0;
    /** The server's side of this channel: what it sent, whether it paused for lack of credit. */
    const serverSide = () =>
      muxOf(server.test.app)
        .all.flatMap((c) => c.stats().channels)
        .find((c) => c.kind === 'exec' && c.sentBytes > 0);
    let paused = false;
    for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
      const sent = serverSide();
      // Credit goes back only as this loop reads: never more than a window ahead of it.
      if (sent) expect(sent.sentBytes).toBeLessThanOrEqual(bytes + window);
      paused ||= sent?.paused === true;
      // A slow consumer: the server must wait for it rather than drop or pile up output.
      if (++chunks % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(bytes).toBe(20_000_000);
    expect(paused).toBe(true);
    expect(hash.digest('hex')).toBe(expected);
    expect(await proc.wait()).toMatchObject({ exitCode: 0 });

    // Stdin beyond the server's 256 KiB window: the client waits for its grants.
    const input = new Uint8Array(2_000_000).map((_, i) => i % 251);
    const sum = await conn.exec('sha256sum');
    const writing = sum.write(input).then(() => sum.closeStdin());
    const out = await sum.output();
    await writing;
    expect(out.stdout.split(' ')[0]).toBe(createHash('sha256').update(input).digest('hex'));
  }, 180_000);

  it('runs a terminal: output, resize seen by stty, signal, exit', async () => {
    const conn = await connect();
    const pty = await conn.pty({ cols: 100, rows: 30 });
    let text = '';
    const decoder = new TextDecoder();
    pty.onData((chunk) => {
      text += decoder.decode(chunk, { stream: true });
    });
    await pty.write('stty size\n');
    await waitFor(async () => text.includes('30 100'), 'the first size');
    pty.resize(120, 40);
    // The resize reaches the terminal asynchronously: ask until the new size shows.
    await waitFor(
      async () => {
        if (text.includes('40 120')) return true;
        await pty.write('stty size\n');
        await new Promise((resolve) => setTimeout(resolve, 200));
        return text.includes('40 120');
      },
      'the new size',
      20_000,
    );
    expect(() => pty.resize(0, 10)).toThrow(ValidationError);
    expect(() => pty.signal('SIGNOPE' as 'SIGINT')).toThrow(ValidationError);
    await pty.write('exit 3\n');
    expect(await pty.wait()).toMatchObject({ exitCode: 3 });

    const sleeper = await conn.pty({ command: 'sleep', args: ['600'] });
    sleeper.signal('SIGTERM');
    expect(await sleeper.wait()).toMatchObject({ signal: 'SIGTERM', exitCode: 143 });
  });

  it('opens a TCP stream to a port inside; a silent port is a clear error and the connection stays up', async () => {
    const conn = await connect();
    const tcp = await conn.tcp(3000);
    await tcp.write('GET /via-mux HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let answer = '';
    const decoder = new TextDecoder();
    for (let chunk = await tcp.read(); chunk; chunk = await tcp.read()) {
      answer += decoder.decode(chunk, { stream: true });
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('hello from /via-mux');
    await tcp.end();
    await tcp.closed;

    const refused = await conn.tcp(SILENT_PORT).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SandboxUnavailableError);
    expect(refused).toMatchObject({ code: 'SANDBOX_UNAVAILABLE', details: { port: SILENT_PORT } });
    await expect(conn.tcp(70_000)).rejects.toBeInstanceOf(ValidationError);

    // The same connection still works, with web streams this time.
    const again = await conn.tcp(3000);
    const writer = again.writable.getWriter();
    await writer.write(new TextEncoder().encode('GET /again HTTP/1.0\r\n\r\n'));
    await writer.close();
    let body = '';
    for await (const chunk of again.readable as unknown as AsyncIterable<Uint8Array>) {
      body += decoder.decode(chunk, { stream: true });
    }
    expect(body).toContain('hello from /again');
  });

  it('stops a channel, and closing the connection kills what it started', async () => {
    const conn = await connect();
    const stopped = await conn.exec('sleep', ['600']);
    await stopped.close();
    await expect(stopped.wait()).rejects.toMatchObject({ code: 'CHANNEL_CLOSED' });

    const orphan = await conn.exec('sleep', ['601']);
    const pid = orphan.pid;
    await conn.close();
    await expect(orphan.wait()).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
    await expect(conn.exec('true')).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
    await waitFor(
      async () => !(await box.exec('ps', ['-eo', 'pid,args'])).stdout.includes('sleep 601'),
      `process ${pid} to be killed`,
    );
  });

  it('refuses another workspace (SandboxNotFoundError), a key without sandbox:exec (ForbiddenError), a stopped sandbox (InvalidStateError)', async () => {
    const stranger = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    // Our sandbox's id on a handle with the stranger's credentials.
    const transport = (stranger as unknown as { transport: SandboxContext['transport'] }).transport;
    const foreign = new Sandbox(
      { transport, previewDomain: 'localhost', WebSocket: NodeWebSocket },
      box.info,
    );
    await expect(foreign.connect()).rejects.toBeInstanceOf(SandboxNotFoundError);

    // A key of this workspace without scope sandbox:exec.
    const reader = await corral.apiKeys.create({ name: 'reader', scopes: ['sandbox:read'] });
    const readerBox = await new Corral({ baseUrl: server.url, apiKey: reader.key }).sandboxes.get(box.id);
    const forbidden = await readerBox.connect().catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect(forbidden).toMatchObject({ status: 403 });

    const other = await corral.sandboxes.create({ template: 'base' });
    try {
      await other.stop();
      await expect(other.connect()).rejects.toBeInstanceOf(InvalidStateError);
    } finally {
      await other.destroy();
    }
  });

  it("works with a WebSocket given to the browser entry's client, and says so when there is none", async () => {
    const key = (await server.newKey()).key;
    const browser = new BrowserCorral({ baseUrl: server.url, apiKey: key, WebSocket: NodeWebSocket });
    const other = await browser.sandboxes.create({ template: 'base' });
    try {
      const conn = await other.connect();
      connections.push(conn);
      await conn.ping();
      const echo = await conn.exec('echo', ['from the browser entry']);
      expect(await echo.output()).toMatchObject({ stdout: 'from the browser entry\n', exitCode: 0 });
      const none = await new BrowserCorral({ baseUrl: server.url, apiKey: key }).sandboxes.get(other.id);
      await expect(none.connect()).rejects.toMatchObject({ code: 'NO_WEBSOCKET' });
    } finally {
      await other.destroy();
    }
  });

  it('forwards a local port (like ssh -L): plain HTTP through it, many requests, a silent port refused', async () => {
    const fwd = await forwardPort(box, 3000);
    try {
      expect(fwd.host).toBe('127.0.0.1');
      expect(fwd.localPort).toBeGreaterThan(0);
      expect(await httpGet(fwd.localPort, '/one')).toEqual({ status: 200, body: 'hello from /one' });
      const many = await Promise.all(Array.from({ length: 4 }, (_, i) => httpGet(fwd.localPort, `/n${i}`)));
      expect(many.map((r) => r.body)).toEqual(Array.from({ length: 4 }, (_, i) => `hello from /n${i}`));
    } finally {
      await fwd.close();
    }
    await expect(httpGet(fwd.localPort)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const silent = await forwardPort(box, SILENT_PORT).catch((e: unknown) => e);
    expect(silent).toBeInstanceOf(SandboxUnavailableError);
    expect((silent as Error).message).toMatch(new RegExp(`${SILENT_PORT}`));
  });
});
