import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyOnly, type SshFixture, sshFixture, sshKeygen } from '../../server/test/ssh/helpers.js';
import type { StoreContext } from '../../server/test/support/app.js';
import { ForbiddenError, NotFoundError, type Sandbox, ValidationError } from '../src/index.js';
import { Corral } from '../src/node.js';
import { type SdkTestServer, startServer } from './support/server.js';

describe('sdk: corral.sshKeys, and a real ssh login with the key', () => {
  let server: SdkTestServer;
  let ssh: SshFixture;
  let corral: Corral;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    // The gateway of the suite's server on a loopback port (the fixture only needs the app).
    ssh = await sshFixture({ app: server.test.app } as StoreContext);
    corral = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    box = await corral.sandboxes.create();
  });
  afterAll(async () => {
    await ssh?.close();
    await server?.close();
  });

  it('adds a key (name defaults to its comment), lists it, logs in with it; removed, it is refused', async () => {
    const key = sshKeygen(ssh.dir, 'sdk_key');
    const added = await corral.sshKeys.add({ public_key: `${key.publicKey}\n` });
    expect(added).toMatchObject({
      id: expect.stringMatching(/^sshk_/),
      name: 'sdk_key@test',
      algorithm: 'ssh-ed25519',
      fingerprint: expect.stringMatching(/^SHA256:/),
      public_key: key.publicKey.split(' ').slice(0, 2).join(' '),
      last_used_at: null,
    });
    expect((await corral.sshKeys.list()).map((k) => k.id)).toEqual([added.id]);

    const ran = await ssh.ssh(box.id, ['echo via-key-$((6*7))'], undefined, keyOnly(key.file));
    expect(ran.stdout).toBe('via-key-42\n');
    expect(ran.code).toBe(0);
    expect((await corral.sshKeys.list())[0]?.last_used_at).not.toBeNull();

    await corral.sshKeys.remove(added.id);
    expect(await corral.sshKeys.list()).toEqual([]);
    const refused = await ssh.ssh(box.id, ['echo should-not-run'], undefined, keyOnly(key.file));
    expect(refused.code).toBe(255);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/Permission denied/);
  });

  it('keeps an explicit name; a second add of the same key is a conflict', async () => {
    const key = sshKeygen(ssh.dir, 'named_key');
    const added = await corral.sshKeys.add({ name: 'laptop', public_key: key.publicKey });
    expect(added.name).toBe('laptop');
    const again = await corral.sshKeys.add({ public_key: key.publicKey }).catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'CONFLICT' });
    await corral.sshKeys.remove(added.id);
  });

  it('refuses what is not a public key: a private key, garbage (400 VALIDATION_ERROR)', async () => {
    const key = sshKeygen(ssh.dir, 'private_key');
    const privateKey = await readFile(key.file, 'utf8');
    expect(await corral.sshKeys.add({ public_key: privateKey }).catch((e: unknown) => e)).toBeInstanceOf(
      ValidationError,
    );
    expect(
      await corral.sshKeys.add({ public_key: 'ssh-ed25519 not-base64!' }).catch((e: unknown) => e),
    ).toBeInstanceOf(ValidationError);
    expect(await corral.sshKeys.list()).toEqual([]);
  });

  it('is per user: another user sees none of mine and cannot remove them; a scoped key cannot add', async () => {
    const key = sshKeygen(ssh.dir, 'mine');
    const mine = await corral.sshKeys.add({ public_key: key.publicKey });
    const other = new Corral({ baseUrl: server.url, apiKey: (await server.newKey()).key });
    expect(await other.sshKeys.list()).toEqual([]);
    expect(await other.sshKeys.remove(mine.id).catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
    // Another user's registered key does not open my sandbox either.
    const theirs = sshKeygen(ssh.dir, 'theirs');
    await other.sshKeys.add({ public_key: theirs.publicKey });
    const ran = await ssh.ssh(box.id, ['echo should-not-run'], undefined, keyOnly(theirs.file));
    expect(ran.code).toBe(255);
    expect(ran.stdout).toBe('');

    const scoped = new Corral({
      baseUrl: server.url,
      apiKey: (await corral.apiKeys.create({ name: 'exec-only', scopes: ['sandbox:exec'] })).key,
    });
    expect((await scoped.sshKeys.list()).map((k) => k.id)).toEqual([mine.id]);
    const added = await scoped.sshKeys
      .add({ public_key: sshKeygen(ssh.dir, 'scoped').publicKey })
      .catch((e: unknown) => e);
    expect(added).toBeInstanceOf(ForbiddenError);
    expect(await scoped.sshKeys.remove(mine.id).catch((e: unknown) => e)).toBeInstanceOf(ForbiddenError);
    await corral.sshKeys.remove(mine.id);
  });
});
