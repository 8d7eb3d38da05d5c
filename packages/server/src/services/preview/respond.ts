import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ApiError, errorBody } from '../../errors.js';

/** Extra response headers (Set-Cookie, Retry-After, WWW-Authenticate …). */
export type Headers = Record<string, string | string[]>;

/** Answers `err` in the API error shape (JSON), unless the response has started (then it is cut). */
export function sendError(
  res: ServerResponse,
  err: ApiError,
  requestId: string,
  headers: Headers = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err, requestId));
  res.writeHead(err.status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}

/** Answers an HTML page with `status`. */
export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  requestId: string,
  headers: Headers = {},
): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(html);
}

/** Answers a redirect (302 or 303) to `location`. */
export function sendRedirect(
  res: ServerResponse,
  status: 302 | 303,
  location: string,
  requestId: string,
  headers: Headers = {},
): void {
  res.writeHead(status, {
    ...headers,
    location,
    'content-length': 0,
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end();
}

/** Refuses a WebSocket upgrade on its raw socket: an HTTP response in the error shape, then close. */
export function refuseUpgrade(socket: Duplex, err: ApiError, requestId: string, headers: Headers = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(errorBody(err, requestId));
  const lines = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    'Connection: close',
  ];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
