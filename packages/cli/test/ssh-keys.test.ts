import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SdkTestServer, startServer } from '../../sdk/test/support/server.js';
import { keyOnly, type SshFixture, sshFixture, sshKeygen } from '../../server/test/ssh/helpers.js';
import type { StoreContext } from '../../server/test/support/app.js';
import { type CliEnv, corral, corralJson, tempConfigHome } from './support.js';

/** A key as `corral ssh-key ls --json` prints it. */
interface Key {
  id: string;
  name: string;
  algorithm: string;
  fingerprint: string;
  last_used_at: string | null;
}

describe('corral ssh-key against a real server and a real ssh login', () => {
  let server: SdkTestServer;
  let ssh: SshFixture;
  let env: CliEnv;
  let home: string;
  let id: string;

  beforeAll(async () => {
    server = await startServer();
    ssh = await sshFixture({ app: server.test.app } as StoreContext);
    const { key } = await server.newKey();
    home = await mkdtemp(join(tmpdir(), 'corral-cli-home-'));
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    id = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
  });
  afterAll(async () => {
    await ssh?.close();
    await server?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('add <file> → ls → ssh with the key logs in → rm → the same ssh is refused', async () => {
    const key = sshKeygen(ssh.dir, 'cli_key');
    const added = await corralJson<Key>(env, ['ssh-key', 'add', `${key.file}.pub`, '--name', 'laptop']);
    expect(added).toMatchObject({
      id: expect.stringMatching(/^sshk_/),
      name: 'laptop',
      algorithm: 'ssh-ed25519',
    });

    const table = await corral(env, ['ssh-key', 'ls']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+TYPE\s+FINGERPRINT\s+ADDED\s+LAST USED$/);
    expect(lines[1]).toMatch(
      new RegExp(`^${added.id}\\s+laptop\\s+ssh-ed25519\\s+SHA256:\\S+\\s+\\S+\\s+-$`),
    );

    const ran = await ssh.ssh(id, ['whoami'], undefined, keyOnly(key.file));
    expect(ran.stdout).toBe('user\n');
    expect(ran.code).toBe(0);
    const used = await corralJson<Key[]>(env, ['ssh-key', 'ls']);
    expect(used.map((k) => k.id)).toEqual([added.id]);
    expect(used[0]?.last_used_at).not.toBeNull();

    const removed = await corral(env, ['ssh-key', 'rm', added.id]);
    expect(removed.code).toBe(0);
    expect(removed.stderr).toContain(`Removed ${added.id}`);
    expect(await corralJson<Key[]>(env, ['ssh-key', 'ls'])).toEqual([]);
    const refused = await ssh.ssh(id, ['whoami'], undefined, keyOnly(key.file));
    expect(refused.code).toBe(255);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/Permission denied/);
  });

  it('add with no file reads ~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub, and says which', async () => {
    const homeEnv = { ...env, HOME: home } as CliEnv;
    const none = await corral(homeEnv, ['ssh-key', 'add']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('No public key found');
    expect(none.stderr).toContain('ssh-keygen -t ed25519');

    await mkdir(join(home, '.ssh'), { recursive: true });
    const rsa = sshKeygen(ssh.dir, 'rsa_slot');
    await writeFile(join(home, '.ssh', 'id_rsa.pub'), `${rsa.publicKey}\n`);
    const first = await corral(homeEnv, ['ssh-key', 'add', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`Using ${join(home, '.ssh', 'id_rsa.pub')}`);
    expect(JSON.parse(first.stdout)).toMatchObject({ name: 'rsa_slot@test' });

    const ed = sshKeygen(ssh.dir, 'ed_slot');
    await writeFile(join(home, '.ssh', 'id_ed25519.pub'), `${ed.publicKey}\n`);
    const second = await corral(homeEnv, ['ssh-key', 'add']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`Using ${join(home, '.ssh', 'id_ed25519.pub')}`);
    expect(second.stdout).toMatch(/^name:\s+ed_slot@test$/m);
    const names = (await corralJson<Key[]>(env, ['ssh-key', 'ls'])).map((k) => k.name);
    expect(names).toEqual(['rsa_slot@test', 'ed_slot@test']);
    for (const k of await corralJson<Key[]>(env, ['ssh-key', 'ls']))
      expect((await corral(env, ['ssh-key', 'rm', k.id])).code).toBe(0);
  });

  it('validates before sending: a private key, garbage, a forged type, a missing file (exit 1, nothing added)', async () => {
    const key = sshKeygen(ssh.dir, 'not_sent');
    const privateRun = await corral(env, ['ssh-key', 'add', key.file]);
    expect(privateRun.code).toBe(1);
    expect(privateRun.stderr).toContain('this is a private key');
    expect(privateRun.stderr).toContain(`${key.file}.pub`);
    // The private key never left: it is nowhere in the output.
    expect(privateRun.stderr + privateRun.stdout).not.toContain(
      (await readFile(key.file, 'utf8')).split('\n')[1],
    );

    const garbage = join(ssh.dir, 'garbage.pub');
    await writeFile(garbage, 'hello world, not a key\n');
    const bad = await corral(env, ['ssh-key', 'add', garbage]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('not an OpenSSH public key');

    const forged = join(ssh.dir, 'forged.pub');
    await writeFile(forged, `ssh-rsa ${key.publicKey.split(' ')[1]} x\n`);
    const mismatch = await corral(env, ['ssh-key', 'add', forged]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('does not match its type');

    const dss = join(ssh.dir, 'dss.pub');
    await writeFile(dss, 'ssh-dss AAAAB3NzaC1kc3M= old\n');
    const old = await corral(env, ['ssh-key', 'add', dss]);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('unsupported key type ssh-dss');

    // Refused here, not by the server (whose refusals carry the [VALIDATION_ERROR] code).
    for (const ran of [privateRun, bad, mismatch, old]) expect(ran.stderr).not.toContain('VALIDATION_ERROR');

    const missing = await corral(env, ['ssh-key', 'add', join(ssh.dir, 'nope.pub')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such file');
    expect(await corralJson<Key[]>(env, ['ssh-key', 'ls'])).toEqual([]);
  });

  it("errors: another user's key id is not found; a key without the * scope cannot add; exit 1", async () => {
    const key = sshKeygen(ssh.dir, 'owned');
    const mine = await corralJson<Key>(env, ['ssh-key', 'add', `${key.file}.pub`]);
    const other = { ...env, CORRAL_API_KEY: (await server.newKey()).key };
    const notFound = await corral(other, ['ssh-key', 'rm', mine.id]);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toContain('NOT_FOUND');
    expect(await corralJson<Key[]>(other, ['ssh-key', 'ls'])).toEqual([]);

    const scoped = { ...env, CORRAL_API_KEY: (await server.newKey(['sandbox:exec'])).key };
    const forbidden = await corral(scoped, ['ssh-key', 'add', `${sshKeygen(ssh.dir, 'scoped').file}.pub`]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('FORBIDDEN');
    expect((await corral(env, ['ssh-key', 'rm', mine.id])).code).toBe(0);
  });

  it('corral ssh --help points at ssh-key add as the alternative to tokens', async () => {
    const help = await corral(env, ['ssh', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('corral ssh-key add');
    expect(help.stdout).toMatch(/<sandbox-id>@<server host>/);
  });
});
