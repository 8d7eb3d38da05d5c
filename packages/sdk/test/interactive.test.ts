import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { NotFoundError, type Sandbox, UnauthorizedError, ValidationError } from '../src/index.js';
import { Corral } from '../src/node.js';
import { type SdkTestServer, startServer, waitFor } from './support/server.js';

/** What a preview host answered. */
interface PreviewAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * `GET path` on the server's port with the preview Host `{port}-{id}.localhost:{serverPort}`
 * (as a browser would send for the preview URL; no DNS needed).
 */
function previewGet(
  serverUrl: string,
  box: Sandbox,
  port: number,
  path = '/',
  headers: Record<string, string> = {},
): Promise<PreviewAnswer> {
  const server = new URL(serverUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        headers: {
          ...headers,
          host: `${port}-${box.id}.localhost:${server.port}`,
          accept: 'application/json',
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket with no credentials but those in `url`; resolves with its first text frame. */
function firstFrame(url: string): Promise<{ type: string; [key: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      socket.close();
      resolve(JSON.parse(String(data)));
    });
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** `url` with its host:port replaced by the test server's (the config's public URL names another port). */
function onServer(url: string, serverUrl: string): string {
  const target = new URL(url);
  target.host = new URL(serverUrl).host;
  return target.toString();
}

const APP = "require('node:http').createServer((q, s) => s.end('hello from ' + q.url)).listen(3000)";

describe('sdk: ports, preview access and tokens', () => {
  let server: SdkTestServer;
  let corral: Corral;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    corral = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    box = await corral.sandboxes.create({ template: 'nodejs', ports: [8080] });
    const started = await box.exec('sh', [
      '-c',
      `setsid nohup node -e "${APP}" >/dev/null 2>&1 </dev/null &`,
    ]);
    expect(started.exitCode).toBe(0);
    await waitFor(async () => (await box.ports()).some((p) => p.port === 3000 && p.listening), 'port 3000');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('lists the listening port with its process and preview URL, and the declared one nothing listens on', async () => {
    const ports = await box.ports();
    expect(ports.find((p) => p.port === 3000)).toMatchObject({
      port: 3000,
      protocol: 'tcp',
      listening: true,
      process: 'node',
      public: false,
      protected: false,
      preview_url: expect.stringContaining(`3000-${box.id}.`),
    });
    expect(ports.find((p) => p.port === 8080)).toMatchObject({ listening: false, public: false });
  });

  it('keeps a preview private until made public, and private again', async () => {
    expect((await previewGet(server.url, box, 3000)).status).toBe(401);
    const opened = await box.makePortPublic(3000);
    expect(opened).toMatchObject({ port: 3000, public: true, protected: false });
    expect(await previewGet(server.url, box, 3000, '/x')).toMatchObject({
      status: 200,
      body: 'hello from /x',
    });
    expect((await box.ports()).find((p) => p.port === 3000)?.public).toBe(true);
    await box.makePortPrivate(3000);
    expect((await previewGet(server.url, box, 3000)).status).toBe(401);
  });

  it('protects a port with a password (Basic auth) and removes it', async () => {
    expect(await box.protectPort(3000, 'correct horse')).toMatchObject({ port: 3000, protected: true });
    const basic = (password: string) => ({
      authorization: `Basic ${Buffer.from(`any:${password}`).toString('base64')}`,
    });
    expect((await previewGet(server.url, box, 3000, '/', basic('correct horse'))).status).toBe(200);
    expect((await previewGet(server.url, box, 3000, '/', basic('wrong horse!'))).status).toBe(401);
    expect((await box.ports()).find((p) => p.port === 3000)?.protected).toBe(true);
    await box.unprotectPort(3000);
    expect((await box.ports()).find((p) => p.port === 3000)?.protected).toBe(false);
    expect((await previewGet(server.url, box, 3000, '/', basic('correct horse'))).status).toBe(401);
    const short = await box.protectPort(3000, 'short').catch((e: unknown) => e);
    expect(short).toBeInstanceOf(ValidationError);
  });

  it('port-forward: the token opens the preview (URL → cookie, or header), is listed, and revoking it shuts it', async () => {
    const forward = await box.portForward(3000, { ttlSeconds: 600 });
    expect(forward.url).toContain(`3000-${box.id}.`);
    expect(forward.url).toContain(`corral_token=${encodeURIComponent(forward.token)}`);
    const viaUrl = await previewGet(
      server.url,
      box,
      3000,
      new URL(forward.url).pathname + new URL(forward.url).search,
    );
    expect(viaUrl.status).toBe(302);
    expect(String(viaUrl.headers['set-cookie'])).toMatch(/HttpOnly/i);
    const header = { 'x-corral-token': forward.token };
    expect(await previewGet(server.url, box, 3000, '/h', header)).toMatchObject({
      status: 200,
      body: 'hello from /h',
    });

    const listed = (await box.tokens()).find((t) => t.id === forward.id);
    expect(listed).toMatchObject({ kind: 'port', port: 3000, status: 'active' });
    expect(JSON.stringify(await box.tokens())).not.toContain(forward.token);
    await box.revokeToken(forward.id);
    expect((await previewGet(server.url, box, 3000, '/', header)).status).toBe(401);
    expect((await box.tokens()).find((t) => t.id === forward.id)?.status).toBe('revoked');
    expect(await box.revokeToken('tok_nope').catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
  });

  it('tunnel tokens: a shell URL that opens a terminal by itself, a port URL, an ssh command', async () => {
    const shell = await box.tunnel({ kind: 'shell' });
    expect(shell.token).toMatch(/^crl_tk_/);
    expect(await firstFrame(onServer(shell.url!, server.url))).toMatchObject({
      type: 'session',
      observer: false,
    });

    const port = await box.tunnel({ kind: 'port', port: 3000 });
    expect(port.url).toContain(`3000-${box.id}.`);
    const ssh = await box.tunnel({ kind: 'ssh', ttl_seconds: 60 });
    expect(ssh.command).toContain(ssh.token);
    expect(ssh.command).toMatch(/ssh .*-p \d+/);

    const kinds = (await box.tokens()).map((t) => t.kind);
    expect(kinds).toEqual(expect.arrayContaining(['shell', 'port', 'ssh']));
    const bad = await box.tunnel({ kind: 'port' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
  });

  it('observe: a read-only token onto the newest terminal session', async () => {
    const terminal = await box.terminal();
    try {
      const observer = await box.observe({ sessionId: terminal.sessionId, ttlSeconds: 120 });
      expect(await firstFrame(onServer(observer.url, server.url))).toMatchObject({
        type: 'session',
        id: terminal.sessionId,
        observer: true,
      });
      expect((await box.tokens()).find((t) => t.id === observer.id)).toMatchObject({
        kind: 'observe',
        session_id: terminal.sessionId,
      });
    } finally {
      await terminal.kill();
    }
  });

  it("another workspace's key sees none of it", async () => {
    const stranger = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    const theirs = stranger.sandboxes.wrap(box.info);
    for (const call of [() => theirs.ports(), () => theirs.portForward(3000), () => theirs.tokens()]) {
      expect(await call().catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
    }
    const anonymous = new Corral({ baseUrl: server.url, apiKey: 'crl_sk_nope', maxRetries: 0 });
    const err = await anonymous.sandboxes.get(box.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
  });
});
