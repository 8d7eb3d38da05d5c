import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/services/keys.js';
import { isoNow } from '../../src/store/db.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { refusal, TermClient } from './helpers.js';

describe('terminal: secrets stay out of the logs', () => {
  const lines: string[] = [];
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      runtime: true,
      logger: pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows the secret env in the terminal, but neither it nor a ?token= JWT nor a sandbox token reaches a log line', async () => {
    const userId = 'usr_terminallogs00000000000';
    const workspaceId = 'ws_terminallogs000000000000';
    await t.store.db
      .insertInto('users')
      .values({
        id: userId,
        email: 'logs@example.test',
        name: 'L',
        password_hash: null,
        is_admin: 0,
        created_at: isoNow(),
      })
      .execute();
    await t.store.db
      .insertInto('workspaces')
      .values({
        id: workspaceId,
        name: 'L',
        plan: 'team',
        personal: 0,
        created_by: userId,
        created_at: isoNow(),
        deleted_at: null,
      })
      .execute();
    await t.store.db
      .insertInto('members')
      .values({ workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: isoNow() })
      .execute();
    const key = await createApiKey(
      { store: t.store, audit: t.app.audit },
      { userId, workspaceId, name: 'logs', scopes: ['*'] },
    );
    const headers = { authorization: `Bearer ${key.key}` };
    const secret = 'never-log-this-terminal-secret-77';
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/sandboxes',
      headers,
      payload: { env: { MY_SECRET: secret } },
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id as string;
    const jwt = (
      await t.app.inject({ method: 'POST', url: '/v1/auth/token', payload: { api_key: key.key } })
    ).json().token as string;

    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const url = `ws://127.0.0.1:${port}/v1/sandboxes/${id}/terminal`;
    const term = await TermClient.open(`${url}?token=${jwt}`);
    term.type('echo "[$MY_SECRET]"\r');
    await term.waitForOutput(new RegExp(`\\[${secret}\\]`));
    // A refused upgrade is logged like any request: with the token redacted.
    expect((await refusal(`${url}?token=${jwt}x`)).statusCode).toBe(401);
    await term.close();
    // Sandbox tokens in URLs (?tunnel=, ?observe=) stay out of the log too, used or refused.
    const mint = async (path: string, payload: object) => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/${path}`,
        headers,
        payload,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json().token as string;
    };
    const shellToken = await mint('tunnel', { kind: 'shell' });
    const observeToken = await mint('observe', {});
    const portToken = await mint('port-forward', { port: 3000 });
    const shell = await TermClient.open(`${url}?tunnel=${shellToken}`);
    const watcher = await TermClient.open(`${url}?observe=${observeToken}`);
    await Promise.all([watcher.close(), shell.close()]);
    expect((await refusal(`${url}?tunnel=${portToken}`)).statusCode).toBe(401);

    const text = lines.join('');
    for (const token of [shellToken, observeToken, portToken]) expect(text).not.toContain(token);
    expect(text).toContain(id); // the log was written, and names the sandbox
    expect(text).not.toContain(secret);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain(key.key);
  });
});
