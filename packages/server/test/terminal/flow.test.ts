import { beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, TermClient, wsBase } from './helpers.js';

describeStores(
  'terminal: flow control',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let base: string;
    const clients = async (sessionId: string) => {
      const res = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/terminal/sessions`,
        headers: owner.headers,
      });
      return (res.json().data as { id: string; clients: number }[]).find((s) => s.id === sessionId)?.clients;
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      base = await wsBase(ctx);
    });

    it('drops a client that stops reading a flood of output; the others get all of it', async () => {
      const fast = await TermClient.open(`${base}/v1/sandboxes/${id}/terminal`, owner.headers);
      const slow = await TermClient.open(
        `${base}/v1/sandboxes/${id}/terminal?session=${fast.sessionId}`,
        owner.headers,
      );
      // The slow client's TCP socket stops reading: the server's queue to it fills up.
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      fast.type('head -c 15000000 /dev/zero | base64 -w 0; echo; echo flood-$((1+1))\r');
      // Only the fast client reads: it sees the whole flood end while the slow one is dropped.
      await fast.waitForOutput(/flood-2/, 120_000);
      const deadline = Date.now() + 30_000;
      while ((await clients(fast.sessionId)) !== 1) {
        if (Date.now() > deadline) throw new Error('the slow client was never dropped');
        await new Promise((r) => setTimeout(r, 100));
      }
      // 20 MB of base64 went through to the reader, far more than the bound queued for the other.
      expect(fast.output.length).toBeGreaterThan(20_000_000);
      await fast.close();
      slow.socket.terminate();
    }, 180_000);
  },
  { runtime: true },
);
