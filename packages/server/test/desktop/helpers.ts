import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makeLayer, makeOciImage } from '../../../runtime/test/templates/images.js';
import type { App } from '../../src/app.js';
import { waitForTemplate } from '../templates/support.js';

/** An HTTP answer as the desktop tests read it. */
export interface PlainResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A plain GET of `url`'s path and query sent to the app on 127.0.0.1:`appPort` with `url`'s
 * host as the Host header (how a preview host reaches the app with no DNS).
 */
export function getVia(
  appPort: number,
  url: string,
  headers: Record<string, string> = {},
): Promise<PlainResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: appPort,
        path: `${u.pathname}${u.search}`,
        headers: { host: `${u.hostname}:${appPort}`, ...headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Imports a one-layer OCI image holding `files` (path → content) as template `name` through
 * the API and waits until it is ready.
 */
export async function importTemplate(
  app: App,
  headers: { authorization: string },
  name: string,
  files: Record<string, string>,
): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'corral-desktop-img-'));
  try {
    const layer = await makeLayer(work, { files, dirs: ['tmp', 'root'], gzip: true });
    const tar = await readFile(await makeOciImage(work, [{ ...layer, gzip: true }]));
    const res = await app.inject({
      method: 'POST',
      url: `/v1/templates?name=${name}`,
      headers: { ...headers, 'content-type': 'application/x-tar' },
      payload: tar,
    });
    expect(res.statusCode, res.body).toBe(202);
    const ready = await waitForTemplate((url) => app.inject({ method: 'GET', url, headers }), res.json().id);
    expect(ready.status, String(ready.log)).toBe('ready');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
