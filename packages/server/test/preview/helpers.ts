import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import WebSocket from 'ws';
import type { StoreContext } from '../support/app.js';

/** The port the suite's app listens on (127.0.0.1, listening on first use). */
export async function listenPort(ctx: StoreContext): Promise<number> {
  if (!ctx.app.server.listening) await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  return (ctx.app.server.address() as AddressInfo).port;
}

/** An answer read whole. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** What `send` takes. */
export interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
}

/**
 * One HTTP request over a real socket to 127.0.0.1:`port` with `Host: host` (a preview host
 * needs no DNS this way); resolves with the whole answer.
 */
export function send(port: number, host: string, options: SendOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: { host, ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => JSON.parse(text),
          });
        });
      },
    );
    req.on('error', reject);
    const body = options.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** The preview host of `port` on sandbox `id` (as a browser would send it, with the server's port). */
export function previewHost(id: string, port: number | string, serverPort: number): string {
  return `${port}-${id}.localhost:${serverPort}`;
}

/** SHA-256 hex. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The `i % 251` pattern the sandbox server's `/big` streams. */
export function pattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i % 65536) % 251;
  return out;
}

/** Waits until `check` is true (polling), or throws after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Opens a WebSocket to 127.0.0.1:`port``path` with `Host: host`: the open socket, or the HTTP
 * status when the upgrade was refused.
 */
export function openWs(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, {
      headers: { ...headers, host },
      maxPayload: 64 * 1024 * 1024,
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

/** Sends `message` and resolves with the next message received. */
export function echo(ws: WebSocket, message: string | Buffer): Promise<{ data: Buffer; binary: boolean }> {
  const reply = new Promise<{ data: Buffer; binary: boolean }>((resolve) =>
    ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })),
  );
  ws.send(message, { binary: typeof message !== 'string' });
  return reply;
}
