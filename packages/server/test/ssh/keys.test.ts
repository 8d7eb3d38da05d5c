import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStores, expectError, type StoreContext } from '../support/app.js';
import { sshKeygen } from './helpers.js';

describeStores('ssh keys: /v1/account/ssh-keys', (ctx) => {
  let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
  let dir: string;
  const add = (headers: { authorization: string }, payload: object) =>
    ctx.app.inject({ method: 'POST', url: '/v1/account/ssh-keys', headers, payload });
  const list = async (headers: { authorization: string }) => {
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/account/ssh-keys', headers });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as { id: string; fingerprint: string }[];
  };
  const remove = (headers: { authorization: string }, id: string) =>
    ctx.app.inject({ method: 'DELETE', url: `/v1/account/ssh-keys/${id}`, headers });
  beforeAll(async () => {
    owner = await ctx.createCaller();
    dir = mkdtempSync(join(tmpdir(), 'corral-ssh-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('adds, lists and deletes a key; the fingerprint is what ssh-keygen -lf prints; audited', async () => {
    const key = sshKeygen(dir, 'k1');
    const res = await add(owner.headers, { name: 'laptop', public_key: `${key.publicKey}\n` });
    expect(res.statusCode, res.body).toBe(201);
    const created = res.json();
    const keygen = execFileSync('ssh-keygen', ['-lf', `${key.file}.pub`], { encoding: 'utf8' }).split(' ')[1];
    expect(created).toMatchObject({
      name: 'laptop',
      algorithm: 'ssh-ed25519',
      fingerprint: keygen,
      public_key: key.publicKey.split(' ').slice(0, 2).join(' '),
      last_used_at: null,
    });
    expect(created.id).toMatch(/^sshk_/);
    expect((await list(owner.headers)).map((k) => k.id)).toEqual([created.id]);

    const events = await ctx.store.db
      .selectFrom('audit_events')
      .select(['action', 'actor_id'])
      .where('target_id', '=', created.id)
      .execute();
    expect(events).toEqual([{ action: 'ssh_key.create', actor_id: owner.keyId }]);

    expect((await remove(owner.headers, created.id)).statusCode).toBe(204);
    expect(await list(owner.headers)).toEqual([]);
    expectError(await remove(owner.headers, created.id), 'NOT_FOUND');
  });

  it('takes RSA and ECDSA keys too', async () => {
    for (const [type, bits] of [
      ['rsa', '3072'],
      ['ecdsa', '256'],
    ] as const) {
      const file = join(dir, `k-${type}`);
      execFileSync('ssh-keygen', ['-q', '-t', type, '-b', bits, '-N', '', '-f', file]);
      const pub = execFileSync('cat', [`${file}.pub`], { encoding: 'utf8' });
      const res = await add(owner.headers, { name: type, public_key: pub });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().algorithm).toBe(type === 'rsa' ? 'ssh-rsa' : 'ecdsa-sha2-nistp256');
    }
  });

  it('refuses garbage, private keys, other formats and oversized input with 400', async () => {
    const priv = ssh2.utils.generateKeyPairSync('ed25519');
    const pem = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
    const bad = [
      'garbage',
      'ssh-ed25519 not-base64!!',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==',
      priv.private,
      pem.private,
      `${priv.public}\n${priv.public}`,
      `ssh-dss ${'A'.repeat(100)}`,
      `ssh-ed25519 ${'A'.repeat(17_000)}`,
    ];
    for (const publicKey of bad) {
      const res = await add(owner.headers, { name: 'bad', public_key: publicKey });
      expect(res.statusCode, `${publicKey.slice(0, 40)} → ${res.body}`).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_ERROR');
    }
    expectError(await add(owner.headers, { name: 'no key' }), 'VALIDATION_ERROR');
  });

  it('refuses a duplicate with 409; another user may register the same key', async () => {
    const key = sshKeygen(dir, 'dup');
    expect((await add(owner.headers, { name: 'one', public_key: key.publicKey })).statusCode).toBe(201);
    expectError(await add(owner.headers, { name: 'two', public_key: key.publicKey }), 'CONFLICT');
    const other = await ctx.createCaller();
    expect((await add(other.headers, { name: 'same', public_key: key.publicKey })).statusCode).toBe(201);
  });

  it("keeps each user's keys their own: another user neither lists nor deletes them", async () => {
    const key = sshKeygen(dir, 'mine');
    const created = (await add(owner.headers, { name: 'mine', public_key: key.publicKey })).json();
    const other = await ctx.createCaller();
    expect((await list(other.headers)).map((k) => k.id)).not.toContain(created.id);
    expectError(await remove(other.headers, created.id), 'NOT_FOUND');
    expect((await list(owner.headers)).map((k) => k.id)).toContain(created.id);
  });

  it('needs credentials, and the full scope to add or delete (a narrower key may only list)', async () => {
    expectError(await ctx.app.inject({ method: 'GET', url: '/v1/account/ssh-keys' }), 'UNAUTHORIZED');
    const narrow = await ctx.createCaller({ scopes: ['sandbox:exec', 'sandbox:read'] });
    expect(await list(narrow.headers)).toEqual([]);
    const key = sshKeygen(dir, 'narrow');
    const refused = expectError(
      await add(narrow.headers, { name: 'x', public_key: key.publicKey }),
      'FORBIDDEN',
    );
    expect(refused.error.details).toEqual({ required_scope: '*' });
    expectError(await remove(narrow.headers, 'sshk_whatever'), 'FORBIDDEN');
  });
});
