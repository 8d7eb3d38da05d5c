// A small HTTP client over node:http for benchmarks: one keep-alive agent per client, so that
// round-trip figures measure requests on an open connection (no TCP handshake per request).
import { Agent, request as httpRequest } from 'node:http';

/**
 * A client for `baseUrl` sending `Authorization: Bearer <key>`. `maxSockets` bounds the open
 * connections (1: every request waits for the one connection, i.e. a strictly serial client).
 * Resolves requests with `{ status, headers, body }` (body a Buffer; `json()` parses it).
 */
export function createClient(baseUrl, { key, maxSockets = 1 } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const base = new URL(baseUrl);

  /**
   * One request. `json` (an object) is sent as the JSON body; `body` (a Buffer) as raw bytes;
   * `sink(response)` instead of buffering takes the response stream and resolves with the body
   * value to return (the download path). `headers` adds headers; `bearer` overrides the key.
   */
  function call(method, path, { json, body, headers = {}, bearer = key, sink } = {}) {
    const payload = json !== undefined ? Buffer.from(JSON.stringify(json)) : body;
    const sent = { ...headers };
    if (bearer) sent.authorization = `Bearer ${bearer}`;
    if (json !== undefined) sent['content-type'] = 'application/json';
    if (payload !== undefined) sent['content-length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: base.hostname, port: base.port, method, path, agent, headers: sent },
        (res) => {
          const done = (value) =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: value,
              json: () => JSON.parse(value.toString('utf8')),
              text: () => value.toString('utf8'),
            });
          if (sink && res.statusCode >= 200 && res.statusCode < 300) {
            Promise.resolve(sink(res)).then(done, reject);
            return;
          }
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => done(Buffer.concat(chunks)));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (payload === undefined) req.end();
      else writeBody(req, payload);
    });
  }

  /** Like `call`, but rejects unless the status is `expected`; resolves with the parsed JSON (or null). */
  async function must(expected, method, path, options) {
    const res = await call(method, path, options);
    if (res.status !== expected) {
      throw new Error(`${method} ${path} → ${res.status} (wanted ${expected}): ${res.text().slice(0, 300)}`);
    }
    return res.body.length > 0 && /json/.test(res.headers['content-type'] ?? '') ? res.json() : null;
  }

  return { call, must, close: () => agent.destroy() };
}

/** Writes a large Buffer in 1 MiB slices, honouring back-pressure (as a streaming uploader would). */
function writeBody(req, payload) {
  const SLICE = 1 << 20;
  let offset = 0;
  const pump = () => {
    while (offset < payload.length) {
      const end = Math.min(offset + SLICE, payload.length);
      const ok = req.write(payload.subarray(offset, end));
      offset = end;
      if (!ok) {
        req.once('drain', pump);
        return;
      }
    }
    req.end();
  };
  pump();
}
