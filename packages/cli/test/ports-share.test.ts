import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sdk/src/index.js';
import { Corral } from '../../sdk/src/node.js';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { type CliEnv, corral, corralJson, MAIN, tempConfigHome } from './support.js';

const run = promisify(execFile);
/** Single-quotes `value` for sh. */
const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

const APP = "require('node:http').createServer((q, s) => s.end('shared ' + q.url)).listen(3000)";

/** `GET /` of port 3000's preview (Host `3000-<id>.localhost:<server port>`, no DNS): status and body. */
function preview(serverUrl: string, id: string, headers: Record<string, string> = {}) {
  const { port } = new URL(serverUrl);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        headers: { ...headers, host: `3000-${id}.localhost:${port}`, accept: 'application/json' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const basic = (password: string) => ({
  authorization: `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}`,
});

/** What the change commands print with --json. */
interface Access {
  port: number;
  public: boolean;
  protected: boolean;
  url: string;
}

describe('corral ports public|private|protect|unprotect against a real server', () => {
  let server: SdkTestServer;
  let env: CliEnv;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    box = await new Corral({ baseUrl: server.url, apiKey: key }).sandboxes.create({ template: 'nodejs' });
    const started = await box.exec('sh', [
      '-c',
      `setsid nohup node -e "${APP}" >/dev/null 2>&1 </dev/null &`,
    ]);
    expect(started.exitCode).toBe(0);
    await waitFor(async () => (await box.ports()).some((p) => p.port === 3000 && p.listening), 'port 3000');
  });
  const socket = `corral-ports-test-${process.pid}`;
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
  const screen = async (session: string) => (await tmux('capture-pane', '-p', '-t', session)).stdout;
  afterAll(async () => {
    await tmux('kill-server').catch(() => {});
    await server?.close();
  });

  it('public: anyone opens the preview with no credentials; private: 401 again', async () => {
    expect((await preview(server.url, box.id)).status).toBe(401);
    const opened = await corral(env, ['ports', 'public', box.id, '3000']);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stderr).toContain('Port 3000 is public (access: public)');
    expect(opened.stdout.trim()).toBe(box.previewUrl(3000));
    expect(await preview(server.url, box.id)).toEqual({ status: 200, body: 'shared /' });
    const listed = await corral(env, ['ports', box.id]);
    expect(listed.stdout).toMatch(/^3000\s+node\s+listening\s+public\s+http/m);

    const closed = await corralJson<Access>(env, ['ports', 'private', box.id, '3000']);
    expect(closed).toEqual({ port: 3000, public: false, protected: false, url: box.previewUrl(3000) });
    expect((await preview(server.url, box.id)).status).toBe(401);
  });

  it('protect --password-stdin: Basic auth with it opens the preview, a wrong one is 401; unprotect removes it', async () => {
    const set = await corral(
      env,
      ['ports', 'protect', box.id, '3000', '--password-stdin', '--json'],
      'a long password\n',
    );
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ port: 3000, public: false, protected: true });
    expect(await preview(server.url, box.id, basic('a long password'))).toEqual({
      status: 200,
      body: 'shared /',
    });
    expect((await preview(server.url, box.id, basic('a long passwore'))).status).toBe(401);
    expect((await preview(server.url, box.id)).status).toBe(401);
    expect((await corral(env, ['ports', box.id])).stdout).toMatch(
      /^3000\s+node\s+listening\s+password\s+http/m,
    );

    const removed = await corral(env, ['ports', 'unprotect', box.id, '3000']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stderr).toContain('(access: private)');
    expect((await preview(server.url, box.id, basic('a long password'))).status).toBe(401);
  });

  it('protect on a terminal asks twice without echo (driven through tmux)', async () => {
    // A session that outlives the test keeps tmux's server up (see shell.test.ts).
    await tmux('new-session', '-d', '-s', 'keeper', 'sleep 3600');
    const session = 'protect';
    const script = `env CORRAL_URL=${quote(env.CORRAL_URL ?? '')} CORRAL_API_KEY=${quote(env.CORRAL_API_KEY ?? '')} ${quote(process.execPath)} ${quote(MAIN)} ports protect ${box.id} 3000; echo "exit=$?"; sleep 30`;
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', script);
    await waitFor(async () => (await screen(session)).includes('Password:'), 'the password prompt', 20_000);
    await tmux('send-keys', '-t', session, 'typed secret 1', 'Enter');
    await waitFor(async () => (await screen(session)).includes('Again:'), 'the second prompt', 10_000);
    await tmux('send-keys', '-t', session, 'typed secret 1', 'Enter');
    await waitFor(async () => (await screen(session)).includes('exit=0'), 'the command to finish', 20_000);
    const shown = await screen(session);
    expect(shown).toContain('Port 3000 asks for the password');
    expect(shown).not.toContain('typed secret');
    await tmux('kill-session', '-t', session);
    expect((await preview(server.url, box.id, basic('typed secret 1'))).status).toBe(200);
    expect((await corral(env, ['ports', 'unprotect', box.id, '3000'])).code).toBe(0);
  });

  it('protect never takes a password it cannot read safely: no TTY and no --password-stdin, or too short (exit 1, unchanged)', async () => {
    const noTty = await corral(env, ['ports', 'protect', box.id, '3000'], 'a long password\n');
    expect(noTty.code).toBe(1);
    expect(noTty.stderr).toContain('--password-stdin');
    const short = await corral(env, ['ports', 'protect', box.id, '3000', '--password-stdin'], 'short\n');
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('at least 8 characters');
    const empty = await corral(env, ['ports', 'protect', box.id, '3000', '--password-stdin']);
    expect(empty.code).toBe(1);
    expect((await box.ports()).find((p) => p.port === 3000)).toMatchObject({
      public: false,
      protected: false,
    });
    // A password is not an argument at all: commander refuses the extra word.
    const inArgv = await corral(env, ['ports', 'protect', box.id, '3000', 'a long password']);
    expect(inArgv.code).toBe(1);
    expect((await box.ports()).find((p) => p.port === 3000)?.protected).toBe(false);
  });

  it('refusals: another workspace is not found, a read-only key is forbidden, a bad port is a usage error', async () => {
    const other = { ...env, CORRAL_API_KEY: (await server.newKey()).key };
    const missing = await corral(other, ['ports', 'public', box.id, '3000']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SANDBOX_NOT_FOUND');

    const owner = new Corral({ baseUrl: server.url, apiKey: env.CORRAL_API_KEY });
    const reader = {
      ...env,
      CORRAL_API_KEY: (await owner.apiKeys.create({ name: 'ro', scopes: ['sandbox:read'] })).key,
    };
    const forbidden = await corral(reader, ['ports', 'public', box.id, '3000']);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('FORBIDDEN');
    // The reader may still list.
    expect((await corral(reader, ['ports', box.id])).code).toBe(0);
    expect((await preview(server.url, box.id)).status).toBe(401);

    const badPort = await corral(env, ['ports', 'public', box.id, '70000']);
    expect(badPort.code).toBe(1);
    expect(badPort.stderr).toContain('Not a port');
  });
});
