import { expect, it } from 'vitest';
import { describeStores, expectError, memberHeaders } from '../support/app.js';

interface EventView {
  id: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

/**
 * Asserts `data` is `expected` (actions, newest first). Events stamped in the same millisecond
 * have no defined order between them, so within such a group only the set is compared.
 */
function expectNewestFirst(data: EventView[], expected: string[]): void {
  expect(data.length).toBe(expected.length);
  let start = 0;
  while (start < data.length) {
    let end = start;
    while (end + 1 < data.length && data[end + 1]!.created_at === data[start]!.created_at) end++;
    if (end + 1 < data.length) expect(data[end + 1]!.created_at < data[start]!.created_at).toBe(true);
    const got = data.slice(start, end + 1).map((e) => e.action);
    expect(got.sort()).toEqual(expected.slice(start, end + 1).sort());
    start = end + 1;
  }
}

describeStores(
  'sandboxes: audit events',
  (ctx) => {
    type Headers = { authorization: string };
    const events = async (headers: Headers, id: string, query = '') => {
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/events${query}`, headers });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { data: EventView[]; next_cursor: string | null };
    };
    const call = (headers: Headers, method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
      ctx.app.inject({
        method,
        url,
        headers,
        ...(payload ? { payload: payload as Record<string, string> } : {}),
      });

    it('records who did what, newest first, paginated; env values never appear', async () => {
      const caller = await ctx.createCaller();
      const created = await call(caller.headers, 'POST', '/v1/sandboxes', {
        env: { API_TOKEN: 'tok-very-secret-1' },
      });
      const id = created.json().id as string;
      for (const action of ['pause', 'resume', 'stop', 'start', 'hibernate', 'resume', 'keepalive']) {
        const res = await call(caller.headers, 'POST', `/v1/sandboxes/${id}/${action}`);
        expect(res.statusCode, `${action}: ${res.body}`).toBeLessThan(300);
      }
      const patched = await call(caller.headers, 'PATCH', `/v1/sandboxes/${id}`, {
        name: 'renamed',
        metadata: { a: 'b' },
      });
      expect(patched.statusCode, patched.body).toBe(200);

      const all = await events(caller.headers, id);
      expectNewestFirst(all.data, [
        'sandbox.update',
        'sandbox.keepalive',
        'sandbox.resume',
        'sandbox.hibernate',
        'sandbox.start',
        'sandbox.stop',
        'sandbox.resume',
        'sandbox.pause',
        'sandbox.create',
      ]);
      for (const event of all.data) {
        expect(event).toMatchObject({ actor_type: 'key', actor_id: caller.keyId });
        expect(event.id).toMatch(/^evt_/);
        expect(event.ip).toBe('127.0.0.1');
        expect(Number.isNaN(Date.parse(event.created_at))).toBe(false);
      }
      expect(all.data.find((e) => e.action === 'sandbox.update')!.details).toMatchObject({
        fields: ['metadata', 'name'],
      });
      expect(all.data.find((e) => e.action === 'sandbox.hibernate')!.details).toMatchObject({
        from: 'running',
        status: 'hibernated',
      });
      expect(JSON.stringify(all)).not.toContain('tok-very-secret-1');

      // Pages of 4 walk the same list.
      const walked: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await events(caller.headers, id, `?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.data.length).toBeLessThanOrEqual(4);
        walked.push(...page.data.map((e) => e.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(walked).toEqual(all.data.map((e) => e.id));
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: `/v1/sandboxes/${id}/events?cursor=!!`,
          headers: caller.headers,
        }),
        'VALIDATION_ERROR',
      );
    });

    it('viewers read events; other workspaces and keys without sandbox:read do not', async () => {
      const caller = await ctx.createCaller();
      const id = (await call(caller.headers, 'POST', '/v1/sandboxes', {})).json().id as string;
      const viewer = await memberHeaders(ctx, caller.workspaceId, 'viewer');
      expect((await events(viewer, id)).data.map((e) => e.action)).toEqual(['sandbox.create']);

      const noRead = await memberHeaders(ctx, caller.workspaceId, 'owner', ['sandbox:exec']);
      const denied = expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/events`, headers: noRead }),
        'FORBIDDEN',
      );
      expect(denied.error.details).toMatchObject({ required_scope: 'sandbox:read' });
      const stranger = await ctx.createCaller();
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/events`, headers: stranger.headers }),
        'SANDBOX_NOT_FOUND',
      );
      expectError(
        await ctx.app.inject({
          method: 'GET',
          url: '/v1/sandboxes/sbx_nope/events',
          headers: caller.headers,
        }),
        'SANDBOX_NOT_FOUND',
      );
    });

    it("a deleted sandbox's history stays readable to its workspace, with the delete", async () => {
      const caller = await ctx.createCaller();
      const id = (await call(caller.headers, 'POST', '/v1/sandboxes', {})).json().id as string;
      expect((await call(caller.headers, 'DELETE', `/v1/sandboxes/${id}`)).statusCode).toBe(204);
      const history = await events(caller.headers, id);
      expectNewestFirst(history.data, ['sandbox.delete', 'sandbox.create']);
      expect(history.data.find((e) => e.action === 'sandbox.delete')!.details).toMatchObject({
        previous_status: 'running',
      });
      const stranger = await ctx.createCaller();
      expectError(
        await ctx.app.inject({ method: 'GET', url: `/v1/sandboxes/${id}/events`, headers: stranger.headers }),
        'SANDBOX_NOT_FOUND',
      );
    });
  },
  { runtime: true },
);
