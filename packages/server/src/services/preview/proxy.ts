import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** Hop-by-hop headers (RFC 9110 §7.6.1) a proxy never forwards, plus `expect` (our server answers 100-continue itself). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

/** Headers of the forwarded request: what the caller's request carried, minus what the caller removes. */
export type ForwardHeaders = Record<string, string | string[]>;

/**
 * The request headers to forward: hop-by-hop ones and those the `Connection` header names are
 * dropped (the body framing is kept: `content-length` / `transfer-encoding: chunked` as sent);
 * `drop` names more (Corral's own credentials).
 */
export function forwardableHeaders(req: IncomingMessage, drop: ReadonlySet<string>): ForwardHeaders {
  const named = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  );
  const out: ForwardHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || drop.has(name) || named.has(name)) continue;
    if (HOP_BY_HOP.has(name) && name !== 'transfer-encoding') continue;
    out[name] = value;
  }
  return out;
}

/** The response's raw headers without hop-by-hop ones (Node frames the body again itself). */
function responseHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Why a forwarded request failed before its answer's headers: the app took too long. */
export class UpstreamTimeout extends Error {
  override readonly name = 'UpstreamTimeout';
}

/**
 * Forwards one HTTP request over `upstream` (a connection to the port) and streams the answer
 * back: bodies of any size both ways with backpressure (pipes), nothing buffered. The upstream
 * connection is asked to stay open; when the exchange ends cleanly `onFree` gets it back for
 * the next request (otherwise it is closed). Resolves with the upstream status once the
 * exchange ends (499 when the client went away); rejects when the upstream failed before
 * answering (the caller answers 502, or retries a bodiless request on a fresh connection), or
 * with `UpstreamTimeout` when no response head came within `headersTimeoutMs` of the request
 * being sent whole (0: no limit). Only that wait is limited: a streaming answer runs on.
 */
export function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: Duplex,
  path: string,
  headers: ForwardHeaders,
  onFree: (socket: Duplex) => void,
  headersTimeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let freed = false;
    let timer: NodeJS.Timeout | undefined;
    const onFreeEvent = () => {
      freed = true;
      onFree(upstream);
    };
    upstream.once('free', onFreeEvent);
    const upReq = httpRequest({
      method: req.method,
      path,
      headers: { ...headers, connection: 'keep-alive' },
      // No agent: with `createConnection` Node sends this request on this connection, and an
      // explicit keep-alive makes it emit `free` on the connection when the exchange is done.
      createConnection: () => upstream as never,
    });
    const finish = (status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // `free` comes on the next tick after a clean end; a connection not freed by then is done.
      setImmediate(() => {
        upstream.off('free', onFreeEvent);
        if (!freed) upstream.destroy();
      });
      resolve(status);
    };
    const fail = (err: Error) => {
      settled = true;
      clearTimeout(timer);
      upstream.off('free', onFreeEvent);
      req.unpipe(upReq);
      upReq.destroy();
      upstream.destroy();
      reject(err);
    };
    if (headersTimeoutMs > 0) {
      upReq.once('finish', () => {
        if (settled) return;
        timer = setTimeout(() => {
          if (!settled && !res.headersSent) fail(new UpstreamTimeout());
        }, headersTimeoutMs);
      });
    }
    upReq.on('error', (err) => {
      if (settled) return;
      if (res.headersSent) {
        res.destroy();
        return finish(502);
      }
      fail(err);
    });
    upReq.on('response', (upRes) => {
      clearTimeout(timer);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.rawHeaders));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
      upRes.on('end', () => finish(upRes.statusCode ?? 502));
    });
    res.on('close', () => {
      if (res.writableFinished || settled) return;
      upReq.destroy();
      upstream.destroy();
      finish(499);
    });
    req.pipe(upReq);
    req.on('error', () => upReq.destroy());
  });
}

/** What `forwardUpgrade` is told besides the connections. */
export interface UpgradeOptions {
  /** How long the upstream may take to start answering (0: no limit). */
  headersTimeoutMs: number;
  /** The upstream's first bytes (its handshake answer) are on their way to the client. */
  onAnswer: () => void;
  /** The upstream sent nothing in time and was closed: answer the client (nothing was written to it). */
  onTimeout: () => void;
}

/**
 * Hands a WebSocket (or any `Upgrade`) request to `upstream`: writes the request head
 * itself, then pipes both ways — the upstream's handshake answer included — until either
 * side closes. When the upstream sends nothing within `headersTimeoutMs` it is closed and
 * `onTimeout` answers the client instead; once the handshake answer started, the connection
 * has no time limit.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  upstream: Duplex,
  path: string,
  headers: ForwardHeaders,
  { headersTimeoutMs, onAnswer, onTimeout }: UpgradeOptions,
): void {
  const lines = [`${req.method ?? 'GET'} ${path} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  lines.push('connection: Upgrade', `upgrade: ${req.headers.upgrade ?? 'websocket'}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length > 0) upstream.write(head);
  const close = () => {
    clearTimeout(timer);
    socket.destroy();
    upstream.destroy();
  };
  const timer =
    headersTimeoutMs > 0
      ? setTimeout(() => {
          upstream.off('close', close);
          upstream.off('error', close);
          upstream.unpipe(socket);
          socket.unpipe(upstream);
          upstream.destroy();
          onTimeout();
        }, headersTimeoutMs)
      : undefined;
  upstream.once('data', () => {
    clearTimeout(timer);
    onAnswer();
  });
  upstream.on('error', close);
  socket.on('error', close);
  upstream.on('close', close);
  socket.on('close', close);
  socket.pipe(upstream);
  upstream.pipe(socket);
}
