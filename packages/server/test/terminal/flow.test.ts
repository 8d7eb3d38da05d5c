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

    it('holds the shell back while its only client does not read, then delivers every byte before the exit', async () => {
      const marker = `flood-finished-${Date.now()}`;
      const exists = async () => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/exec`,
          headers: owner.headers,
          payload: { command: 'sh', args: ['-c', `test -e /tmp/${marker} && echo yes || echo no`] },
        });
        return (res.json().stdout as string).trim() === 'yes';
      };
      const client = await TermClient.open(`${base}/v1/sandboxes/${id}/terminal`, owner.headers);
      let outputAtExit = -1;
      client.socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary && data.toString('utf8').includes('"exit"')) outputAtExit = client.output.length;
      });
      const lines = 3_000_000; // ~21 MB: far more than the socket buffers and the server's bound
      const tcp = (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      tcp.pause();
      client.type(
        `stty -echo -opost; echo BEGIN; seq 1 ${lines}; echo FINISH; touch /tmp/${marker}; exit 7\r`,
      );
      // Not reading for a while (under the 10 s after which a lagging client is dropped): the
      // session stops reading the PTY, so the shell is blocked, not finished into memory.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await exists()).toBe(false);
      tcp.resume();
      expect(await client.control('exit', 120_000)).toMatchObject({ exit_code: 7 });
      await client.closed;
      expect(client.closeCode).toBe(1000);
      expect(await exists()).toBe(true);
      const text = client.output;
      const start = text.indexOf('BEGIN\n') + 'BEGIN\n'.length;
      const end = text.indexOf('FINISH\n');
      expect(start).toBeGreaterThan(5);
      let expected = '';
      for (let i = 1; i <= lines; i++) expected += `${i}\n`;
      expect(end - start).toBe(expected.length);
      expect(text.slice(start, end) === expected).toBe(true);
      // The exit frame came after the last output.
      expect(outputAtExit).toBeGreaterThanOrEqual(end + 'FINISH\n'.length);
    }, 180_000);
  },
  { runtime: true },
);
