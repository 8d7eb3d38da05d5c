import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { createApiKey } from '../../src/services/keys.js';
import { isoNow } from '../../src/store/db.js';
import type { StoreContext } from '../support/app.js';

/** Default deadline of every wait (generous: the host may be loaded). */
const WAIT_MS = 20_000;

/** The listening base URL (`ws://127.0.0.1:port`) of the suite's app, listening on first use. */
export async function wsBase(ctx: StoreContext): Promise<string> {
  if (!ctx.app.server.listening) await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = ctx.app.server.address() as AddressInfo;
  return `ws://127.0.0.1:${port}`;
}

/** A server control frame (JSON text frame). */
export type Control = { type: string; [key: string]: unknown };

/** A terminal WebSocket client: collects the output (as text) and the control frames. */
export class TermClient {
  output = '';
  readonly controls: Control[] = [];
  closeCode: number | null = null;
  readonly closed: Promise<number>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.output += data.toString('utf8');
      else this.controls.push(JSON.parse(data.toString('utf8')) as Control);
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code) => {
        this.closeCode = code;
        resolve(code);
      });
    });
  }

  /** Opens `url` and resolves once the session frame arrived. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<TermClient> {
    const socket = new WebSocket(url, { headers });
    const client = new TermClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await client.control('session');
    return client;
  }

  /** The session id from the server's `session` frame. */
  get sessionId(): string {
    return this.controls.find((c) => c.type === 'session')!.id as string;
  }

  /** Sends bytes (a binary frame) as if typed. */
  type(text: string): void {
    this.socket.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  /** Sends a JSON control frame. */
  sendControl(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** Waits until the output matches `pattern`; returns the match. */
  async waitForOutput(pattern: RegExp, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (Date.now() > deadline)
        throw new Error(`no ${pattern} in output: ${JSON.stringify(this.output.slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for the next control frame of `type` (one already received counts). */
  async control(type: string, timeoutMs = WAIT_MS): Promise<Control> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.controls.find((c) => c.type === type);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${type} frame; got ${JSON.stringify(this.controls)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): Promise<number> {
    this.socket.close();
    return this.closed;
  }
}

/** What a refused upgrade answered: the HTTP status, headers and body. */
export interface Refusal {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Tries to open `url`; resolves with the HTTP answer when the server refuses the upgrade. */
export function refusal(url: string, headers: Record<string, string> = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        res.socket?.destroy();
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    socket.once('error', (err) => reject(err));
  });
}

/** A new member of `workspaceId` with `role` and an API key there; its Authorization headers. */
export async function memberOf(ctx: StoreContext, workspaceId: string, role: string, scopes = ['*']) {
  const user = await ctx.createUser();
  await ctx.store.db
    .insertInto('members')
    .values({ workspace_id: workspaceId, user_id: user.id, role, created_at: isoNow() })
    .execute();
  const key = await createApiKey(
    { store: ctx.store, audit: ctx.app.audit },
    { userId: user.id, workspaceId, name: `${role} key`, scopes },
  );
  return { authorization: `Bearer ${key.key}` };
}

/** A running sandbox of the caller (with secret `env`). */
export async function createSandbox(
  ctx: StoreContext,
  headers: { authorization: string },
  env: Record<string, string> = {},
): Promise<string> {
  const res = await ctx.app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload: { env } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id as string;
}
