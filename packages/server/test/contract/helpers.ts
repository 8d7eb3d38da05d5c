import { expect } from 'vitest';
import WebSocket from 'ws';

/** RFC 3339 UTC, as API.md's conventions require of every timestamp. */
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** A sandbox token as minted (`crl_tk_…`). */
export const SANDBOX_TOKEN = /^crl_tk_[A-Za-z0-9_-]+$/;

/** Asserts `value` has exactly `keys` (in any order) and returns it. */
export function exactKeys<T extends object>(value: T, keys: string[], what: string): T {
  expect(Object.keys(value).sort(), what).toEqual([...keys].sort());
  return value;
}

/** Asserts an RFC 3339 UTC time within `slackMs` of `expectedMs`. */
export function expectTimeNear(value: unknown, expectedMs: number, slackMs: number, what: string): void {
  expect(value, what).toMatch(RFC3339_UTC);
  expect(Math.abs(Date.parse(value as string) - expectedMs), what).toBeLessThanOrEqual(slackMs);
}

/** The fields of the Sandbox object that API.md lists (the server may add more). */
export const SANDBOX_FIELDS = [
  'id',
  'name',
  'workspace_id',
  'status',
  'template',
  'type',
  'resources',
  'network',
  'metadata',
  'ports',
  'ws_url',
  'preview_urls',
  'vnc_url',
  'created_at',
  'started_at',
  'expires_at',
  'last_activity_at',
  'budget',
  'trust_score',
] as const;

/** The preview URL API.md describes: `{scheme}://{label}-{id}.{preview_domain}[:port]`. */
export function previewUrlOf(publicUrl: string, previewDomain: string, label: string, id: string): string {
  const base = new URL(publicUrl);
  return `${base.protocol}//${label}-${id}.${previewDomain}${base.port ? `:${base.port}` : ''}`;
}

/** Opens `url` (offering `protocols`): the open socket, or the refused upgrade's HTTP answer. */
export function upgrade(url: string, protocols: string[] = []) {
  return new Promise<
    | { socket: WebSocket }
    | { statusCode: number; headers: Record<string, string | string[] | undefined>; body: string }
  >((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    socket.once('open', () => resolve({ socket }));
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
    socket.once('error', reject);
  });
}
