import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sdk/src/index.js';
import { Corral } from '../../sdk/src/node.js';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { type CliEnv, corral, corralJson, tempConfigHome } from './support.js';

const APP = "require('node:http').createServer((q, s) => s.end('ok')).listen(3000)";

describe('corral ports against a real server', () => {
  let server: SdkTestServer;
  let env: CliEnv;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    box = await new Corral({ baseUrl: server.url, apiKey: key }).sandboxes.create({
      template: 'nodejs',
      ports: [8080],
    });
    const started = await box.exec('sh', [
      '-c',
      `setsid nohup node -e "${APP}" >/dev/null 2>&1 </dev/null &`,
    ]);
    expect(started.exitCode).toBe(0);
    await waitFor(async () => (await box.ports()).some((p) => p.port === 3000 && p.listening), 'port 3000');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('lists what listens inside (process, preview URL, access) and the declared port, as JSON and as a table', async () => {
    const ports = await corralJson<
      { port: number; process: string | null; listening: boolean; public: boolean }[]
    >(env, ['ports', box.id]);
    expect(ports.find((p) => p.port === 3000)).toMatchObject({
      process: 'node',
      listening: true,
      public: false,
    });
    expect(ports.find((p) => p.port === 8080)).toMatchObject({ listening: false });

    await box.makePortPublic(3000);
    await box.protectPort(8080, 'a long password');
    const table = await corral(env, ['ports', box.id]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^PORT\s+PROCESS\s+STATE\s+ACCESS\s+URL$/);
    expect(lines.find((l) => l.startsWith('3000 '))).toMatch(
      new RegExp(`^3000\\s+node\\s+listening\\s+public\\s+http://3000-${box.id}\\.`),
    );
    expect(lines.find((l) => l.startsWith('8080 '))).toMatch(/^8080\s+-\s+not listening\s+password\s+http/);
  });

  it('open still prints the preview URL of any port', async () => {
    const open = await corralJson<{ port: number; url: string }>(env, ['open', box.id, '5173']);
    expect(open).toEqual({ port: 5173, url: expect.stringContaining(`5173-${box.id}.`) });
  });

  it('an unknown sandbox or a bad key is an error on stderr with exit 1', async () => {
    const missing = await corral(env, ['ports', 'sbx_doesnotexist']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SANDBOX_NOT_FOUND');
    const badKey = await corral({ ...env, CORRAL_API_KEY: 'crl_sk_wrong' }, ['ports', box.id]);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('UNAUTHORIZED');
  });
});
