import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Corral } from '../../sdk/src/node.js';
import { type SdkTestServer, startServer } from '../../sdk/test/support/server.js';
import { type SshFixture, sshFixture } from '../../server/test/ssh/helpers.js';
import type { StoreContext } from '../../server/test/support/app.js';
import { type CliEnv, corral, corralJson, tempConfigHome } from './support.js';

/** `corral tunnel --json`. */
interface Tunnel {
  id: string;
  token: string;
  kind: string;
  expires_at: string;
  command?: string;
  url?: string;
}

/** A row of `corral tokens ls --json`. */
interface Token {
  id: string;
  kind: string;
  port: number | null;
  status: 'active' | 'expired' | 'revoked';
  created_by: string;
  expires_at: string;
}

describe('corral tunnel and corral tokens ls|revoke against a real server and a real ssh login', () => {
  let server: SdkTestServer;
  let ssh: SshFixture;
  let env: CliEnv;
  let id: string;

  beforeAll(async () => {
    server = await startServer();
    ssh = await sshFixture({ app: server.test.app } as StoreContext);
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    id = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
  });
  afterAll(async () => {
    await ssh?.close();
    await server?.close();
  });

  it('tunnel (ssh) → ls shows it active → the token logs in → revoke → ls shows revoked, ssh refused', async () => {
    const tunnel = await corralJson<Tunnel>(env, ['tunnel', id, '--ttl', '600']);
    expect(tunnel).toMatchObject({ kind: 'ssh', token: expect.stringMatching(/^crl_tk_/) });
    expect(tunnel.command).toContain(`${tunnel.token}@`);
    const seconds = (Date.parse(tunnel.expires_at) - Date.now()) / 1000;
    expect(seconds).toBeGreaterThan(500);
    expect(seconds).toBeLessThanOrEqual(600);

    const active = await corralJson<Token[]>(env, ['tokens', 'ls', id]);
    expect(active.find((t) => t.id === tunnel.id)).toMatchObject({
      kind: 'ssh',
      status: 'active',
      port: null,
    });
    expect(JSON.stringify(active)).not.toContain(tunnel.token);

    const ran = await ssh.ssh(tunnel.token, ['echo tunnel-$((6*7))']);
    expect(ran.stdout).toBe('tunnel-42\n');
    expect(ran.code).toBe(0);

    const revoked = await corral(env, ['tokens', 'revoke', id, tunnel.id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stderr).toContain(`Revoked ${tunnel.id}`);
    const table = await corral(env, ['tokens', id]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+KIND\s+PORT\s+STATUS\s+EXPIRES\s+CREATED BY\s+LAST USED$/);
    expect(lines.find((l) => l.startsWith(tunnel.id))).toMatch(
      new RegExp(`^${tunnel.id}\\s+ssh\\s+-\\s+revoked\\s+\\S+\\s+(usr|key)_\\S+\\s+\\S+$`),
    );
    const refused = await ssh.ssh(tunnel.token, ['echo should-not-run']);
    expect(refused.code).toBe(255);
    expect(refused.stdout).toBe('');
  });

  it('prints the token, the expiry and the command or URL for people; port and shell kinds', async () => {
    const human = await corral(env, ['tunnel', id, '--kind', 'port', '--port', '3000']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^token:\s+crl_tk_\S+$/m);
    expect(human.stdout).toMatch(/^kind:\s+port$/m);
    expect(human.stdout).toMatch(/^expires:\s+\d{4}-/m);
    expect(human.stdout).toMatch(new RegExp(`^url:\\s+http://3000-${id}\\.\\S+$`, 'm'));
    expect(human.stderr).toMatch(
      /shown only this once; revoke it with: corral tokens revoke sbx_\S+ tun_\S+/,
    );

    const shell = await corralJson<Tunnel>(env, ['tunnel', id, '--kind', 'shell']);
    expect(shell.url).toMatch(/^ws/);
    const kinds = (await corralJson<Token[]>(env, ['tokens', 'ls', id])).map((t) => [t.kind, t.port]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['port', 3000],
        ['shell', null],
      ]),
    );
  });

  it('usage errors before any request: --kind port without --port, --port with ssh, a bad kind or ttl', async () => {
    const before = (await corralJson<Token[]>(env, ['tokens', 'ls', id])).length;
    for (const args of [
      ['--kind', 'port'],
      ['--port', '3000'],
      ['--kind', 'vnc'],
      ['--ttl', '0'],
      ['--ttl', '86401'],
    ]) {
      const ran = await corral(env, ['tunnel', id, ...args]);
      expect(ran.code, args.join(' ')).toBe(1);
      expect(ran.stdout).toBe('');
    }
    expect(await corralJson<Token[]>(env, ['tokens', 'ls', id])).toHaveLength(before);
  });

  it("refusals: another workspace is not found, a read-only key cannot mint, an unknown token id, another sandbox's token", async () => {
    const other = { ...env, CORRAL_API_KEY: (await server.newKey()).key };
    for (const args of [
      ['tunnel', id],
      ['tokens', 'ls', id],
    ]) {
      const ran = await corral(other, args);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toContain('SANDBOX_NOT_FOUND');
    }
    const mine = await corralJson<Tunnel>(env, ['tunnel', id]);
    const stolen = await corral(other, ['tokens', 'revoke', id, mine.id]);
    expect(stolen.code).toBe(1);

    const owner = new Corral({ baseUrl: server.url, apiKey: env.CORRAL_API_KEY });
    const reader = {
      ...env,
      CORRAL_API_KEY: (await owner.apiKeys.create({ name: 'ro', scopes: ['sandbox:read'] })).key,
    };
    const forbidden = await corral(reader, ['tunnel', id]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('FORBIDDEN');

    const unknown = await corral(env, ['tokens', 'revoke', id, 'tun_doesnotexist']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NOT_FOUND');

    // A token id of one sandbox does not revoke through another.
    const second = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
    const crossed = await corral(env, ['tokens', 'revoke', second, mine.id]);
    expect(crossed.code).toBe(1);
    expect((await corralJson<Token[]>(env, ['tokens', 'ls', id])).find((t) => t.id === mine.id)?.status).toBe(
      'active',
    );
    expect((await ssh.ssh(mine.token, ['true'])).code).toBe(0);
  });
});
