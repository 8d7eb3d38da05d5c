import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake server saw. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/** What a handler answers: a status, headers and a JSON body, or `'destroy'` to drop the connection. */
export type FakeAnswer =
  | { status: number; headers?: Record<string, string>; json?: unknown; text?: string }
  | 'destroy'
  | 'hang';

/**
 * A loopback HTTP server standing in for Corral where the real one cannot be made to misbehave
 * on cue (429/503 answers, dropped connections, expiring tokens). `POST /v1/auth/token`
 * answers `{token: 'jwt-<n>', expires_at}` with `tokenLifetimeMs` (negative: already expired).
 */
export class FakeServer {
  readonly requests: SeenRequest[] = [];
  tokenLifetimeMs = 15 * 60_000;
  tokensIssued = 0;
  handler: (request: SeenRequest, count: number) => FakeAnswer = () => ({ status: 200, json: {} });
  private server: Server | null = null;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The non-token requests seen so far. */
  get calls(): SeenRequest[] {
    return this.requests.filter((r) => r.path !== '/v1/auth/token');
  }

  reset(): void {
    this.requests.length = 0;
    this.tokensIssued = 0;
    this.tokenLifetimeMs = 15 * 60_000;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const seen: SeenRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    this.requests.push(seen);
    if (seen.path === '/v1/auth/token') {
      this.tokensIssued += 1;
      const expires_at = new Date(Date.now() + this.tokenLifetimeMs).toISOString();
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: `jwt-${this.tokensIssued}`, expires_at }));
    }
    const answer = this.handler(seen, this.calls.length);
    if (answer === 'destroy') return void req.socket.destroy();
    if (answer === 'hang') return;
    const headers = { 'x-request-id': `req_fake${this.requests.length}`, ...answer.headers };
    if (answer.json !== undefined) {
      res
        .writeHead(answer.status, { 'content-type': 'application/json', ...headers })
        .end(JSON.stringify(answer.json));
    } else {
      res.writeHead(answer.status, headers).end(answer.text ?? '');
    }
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** The API's error body for `code`. */
export function apiError(code: string, details: Record<string, unknown> = {}): unknown {
  return { error: { code, message: `fake ${code}`, details }, request_id: 'req_fake' };
}
