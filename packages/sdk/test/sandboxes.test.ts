import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtLifetimeMs } from '../src/auth.js';
import {
  type Corral,
  ForbiddenError,
  InvalidStateError,
  NotFoundError,
  Page,
  Sandbox,
  SandboxNotFoundError,
  UnauthorizedError,
  ValidationError,
} from '../src/index.js';
import { type SdkTestServer, startServer } from './support/server.js';

describe('sdk: sandboxes', () => {
  let server: SdkTestServer;
  let corral: Corral;

  beforeAll(async () => {
    server = await startServer();
    corral = await server.client();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('creates a sandbox handle typed from the API, gets it, and destroys it', async () => {
    const box = await corral.sandboxes.create({
      template: 'base',
      name: 'sdk-box',
      metadata: { team: 'a' },
      ports: [3000],
    });
    expect(box).toBeInstanceOf(Sandbox);
    expect(box.id).toMatch(/^sbx_/);
    expect(box.status).toBe('running');
    expect(box.name).toBe('sdk-box');
    expect(box.info.metadata).toEqual({ team: 'a' });
    const again = await corral.sandboxes.get(box.id);
    expect(again.info).toEqual(box.info);
    await box.destroy();
    expect(box.status).toBe('deleted');
    const err = await corral.sandboxes.get(box.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxNotFoundError);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: 'SANDBOX_NOT_FOUND', status: 404, name: 'SandboxNotFoundError' });
  });

  it('lists with filters, pages and an async iterator over every page', async () => {
    const client = await server.client();
    const made = [];
    for (let i = 0; i < 3; i++) {
      made.push(await client.sandboxes.create({ template: 'base', metadata: { batch: 'x', n: String(i) } }));
    }
    const other = await client.sandboxes.create({ template: 'base', metadata: { batch: 'y' } });
    await other.stop();

    const page = await client.sandboxes.list({ limit: 2, metadata: { batch: 'x' } });
    expect(page).toBeInstanceOf(Page);
    expect(page.data).toHaveLength(2);
    expect(page.hasMore).toBe(true);
    const all: string[] = [];
    for await (const box of page) all.push(box.id);
    expect([...all].sort()).toEqual(made.map((b) => b.id).sort());
    const second = await page.nextPage();
    expect(second?.data.map((b) => b.id)).toEqual(all.slice(2));

    const iterated: string[] = [];
    for await (const box of client.sandboxes.iterate({ limit: 1 })) iterated.push(box.id);
    expect(iterated.sort()).toEqual([...made, other].map((b) => b.id).sort());
    expect((await client.sandboxes.list({ status: 'stopped' })).data.map((b) => b.id)).toEqual([other.id]);
    expect((await client.sandboxes.list({ metadata: { n: '1' } })).data.map((b) => b.id)).toEqual([
      made[1]?.id,
    ]);
  });

  it('moves through the lifecycle and keeps info current', async () => {
    const box = await corral.sandboxes.create({ template: 'base' });
    expect((await box.pause()).status).toBe('paused');
    await expect(box.pause()).rejects.toBeInstanceOf(InvalidStateError);
    expect((await box.resume()).status).toBe('running');
    expect((await box.stop()).status).toBe('stopped');
    expect((await box.start()).status).toBe('running');
    expect((await box.hibernate()).status).toBe('hibernated');
    expect((await box.resume()).status).toBe('running');

    const before = box.info.expires_at;
    await box.keepalive(86_400);
    await box.refresh();
    expect(Date.parse(box.info.expires_at)).toBeGreaterThan(Date.parse(before));
    await box.keepalive();

    await box.update({ name: 'renamed', metadata: { k: 'v' } });
    expect(box.info).toMatchObject({ name: 'renamed', metadata: { k: 'v' } });
    await expect(box.update({})).rejects.toBeInstanceOf(ValidationError);
    await box.destroy();
  });

  it('sets, lists and removes secret env vars that commands see', async () => {
    const box = await corral.sandboxes.create({ template: 'base', env: { FIRST: '1' } });
    expect(await box.env.list()).toEqual(['FIRST']);
    expect(await box.env.set({ SECOND: 'two', THIRD: '3' })).toEqual(['FIRST', 'SECOND', 'THIRD']);
    expect((await box.exec('sh', ['-c', 'echo $FIRST $SECOND'])).stdout).toBe('1 two\n');
    await box.env.remove('SECOND');
    expect(await box.env.list()).toEqual(['FIRST', 'THIRD']);
    expect((await box.exec('sh', ['-c', 'echo "[$SECOND]"'])).stdout).toBe('[]\n');
    await box.destroy();
  });

  it('lists audit events, newest first, across pages', async () => {
    const box = await corral.sandboxes.create({ template: 'base' });
    await box.exec('true');
    await box.files.write('a.txt', 'a');
    const page = await box.events({ limit: 1 });
    expect(page.data).toHaveLength(1);
    const actions: string[] = [];
    for await (const event of page) actions.push(event.action);
    expect(actions[0]).toBe('sandbox.files.write');
    expect(actions).toContain('sandbox.exec');
    expect(actions.at(-1)).toBe('sandbox.create');
    await box.destroy();
  });

  it('previewUrl: the listed URL, or one built the same way', async () => {
    const box = await corral.sandboxes.create({ template: 'base', ports: [3000] });
    expect(box.previewUrl(3000)).toBe(box.info.preview_urls['3000']);
    expect(box.previewUrl(8000)).toBe(box.info.preview_urls['3000']?.replace('//3000-', '//8000-'));
    const plain = corral.sandboxes.wrap({ ...box.info, preview_urls: {} });
    expect(plain.previewUrl(5173)).toBe(`http://5173-${box.id}.localhost:8080`);
    await box.destroy();
  });

  it("the server's tokens carry iat and exp, which the SDK reads for their lifetime", async () => {
    const { key } = await server.newKey();
    const res = await fetch(`${server.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ api_key: key }),
    });
    const { token } = (await res.json()) as { token: string };
    expect(jwtLifetimeMs(token)).toBe(15 * 60_000);
  });

  it('me() and API keys: create, list, use, revoke', async () => {
    const me = await corral.me();
    expect(me.user.id).toMatch(/^usr_/);
    expect(me.workspaces).toHaveLength(1);
    const created = await corral.apiKeys.create({ name: 'from the sdk', scopes: ['sandbox:read'] });
    expect(created.key).toMatch(/^crl_sk_/);
    const listed: string[] = [];
    for await (const key of await corral.apiKeys.list()) listed.push(key.id);
    expect(listed).toContain(created.id);
    const limited = await server.client({ apiKey: created.key });
    expect((await limited.sandboxes.list()).data).toEqual(expect.any(Array));
    await expect(limited.sandboxes.create({ template: 'base' })).rejects.toBeInstanceOf(ForbiddenError);
    await corral.apiKeys.revoke(created.id);
    const revoked = await server.client({ apiKey: created.key });
    await expect(revoked.me()).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('maps auth and permission errors', async () => {
    const reader = await server.client({ scopes: ['sandbox:read'] });
    const err = await reader.sandboxes.create({ template: 'base' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect((err as ForbiddenError).details).toMatchObject({ required_scope: 'sandbox:create' });
    const stranger = await server.client();
    const box = await corral.sandboxes.create({ template: 'base' });
    await expect(stranger.sandboxes.get(box.id)).rejects.toBeInstanceOf(SandboxNotFoundError);
    const bad = await server.client({ apiKey: 'crl_sk_not_a_real_key' });
    await expect(bad.sandboxes.list()).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(corral.sandboxes.create({ template: 'no-such-template' })).rejects.toMatchObject({
      code: 'TEMPLATE_NOT_FOUND',
      name: 'TemplateNotFoundError',
    });
    await box.destroy();
  });
});
