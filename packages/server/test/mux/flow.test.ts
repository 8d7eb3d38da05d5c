import { createHash } from 'node:crypto';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { WS_HIGH_WATER_BYTES } from '../../src/services/mux/connection.js';
import { muxOf } from '../../src/services/mux/index.js';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, wsBase } from '../terminal/helpers.js';
import { frame, MuxClient, T } from './client.js';

/** What one channel may hold beyond the client's credit: about a chunk per source (generous). */
const HELD_BOUND = 256 * 1024;
const TOTAL = 50_000_000;

describeStores(
  'mux: flow control',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let url: string;
    const clients: MuxClient[] = [];
    const connect = async () => {
      const client = await MuxClient.connect(url, owner.headers);
      clients.push(client);
      return client;
    };
    /** The server side of this suite's only connection. */
    const server = () => {
      const found = muxOf(ctx.app).all.filter((c) => c.sandboxId === id);
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    const until = async (what: string, test: () => boolean, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!test()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      url = `${await wsBase(ctx)}/v1/sandboxes/${id}/ws`;
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });

    it('stops reading a fast producer when the client grants no more window, and resumes when it does', async () => {
      const mux = await connect();
      mux.autoWindow = false;
      const window = 65_536;
      mux.log(1).keep = false;
      const ch = await mux.open({
        type: 'exec',
        command: 'head',
        args: ['-c', String(TOTAL), '/dev/zero'],
        window,
      });
      // Exactly the window arrives, then the server pauses the process's output.
      await mux.waitFor(ch.id, (l) => l.stdoutBytes === window);
      await until('the channel to pause', () => server().stats().channels[0]?.paused === true);
      let stats = server().stats();
      expect(stats.channels[0]).toMatchObject({ credit: 0, sentBytes: window, paused: true });
      expect(stats.heldBytes).toBeLessThanOrEqual(HELD_BOUND);
      // The producer is blocked on its pipe, not finished into the server's memory.
      expect(mux.log(ch.id).has(T.EXIT)).toBe(false);
      const ps = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/processes`,
        headers: owner.headers,
      });
      expect((ps.json().data as { pid: number }[]).map((p) => p.pid)).toContain(ch.body.pid);
      stats = server().stats();
      expect(stats.channels[0]!.sentBytes).toBe(window);
      expect(mux.log(ch.id).stdoutBytes).toBe(window);

      // Granting credit as it reads, the client gets every byte; what the server holds stays bounded.
      let maxHeld = 0;
      let maxBuffered = 0;
      const sampler = setInterval(() => {
        const s = muxOf(ctx.app)
          .all.find((c) => c.sandboxId === id)
          ?.stats();
        if (!s) return;
        maxHeld = Math.max(maxHeld, s.heldBytes);
        maxBuffered = Math.max(maxBuffered, s.wsBufferedBytes);
      }, 5);
      try {
        mux.autoWindow = true;
        const credit = Buffer.alloc(4);
        credit.writeUInt32BE(window, 0);
        mux.send(frame(T.WINDOW, ch.id, credit));
        const log = await mux.closedChannel(ch.id, 120_000);
        expect(log.stdoutBytes).toBe(TOTAL);
        expect(log.nonZero).toBe(false);
        expect(log.json(T.EXIT)).toMatchObject({ exit_code: 0 });
      } finally {
        clearInterval(sampler);
      }
      expect(maxHeld).toBeLessThanOrEqual(HELD_BOUND);
      expect(maxBuffered).toBeLessThanOrEqual(window + 4096);
    }, 180_000);

    it("stops at the WebSocket's own buffer when the client has granted a huge window but does not read", async () => {
      const mux = await connect();
      mux.autoWindow = false;
      mux.log(1).keep = false;
      const ch = await mux.open({
        type: 'exec',
        command: 'head',
        args: ['-c', String(TOTAL), '/dev/zero'],
        window: 1024 * 1024 * 1024,
      });
      // The client's TCP socket stops reading: the kernel buffers fill, then the WebSocket's.
      (mux.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      await until(
        'the channel to pause on the WebSocket buffer',
        () => {
          const c = server().stats().channels[0];
          return c?.paused === true && c.credit > 0;
        },
        60_000,
      );
      const stats = server().stats();
      expect(stats.wsBufferedBytes).toBeGreaterThan(WS_HIGH_WATER_BYTES);
      expect(stats.wsBufferedBytes).toBeLessThanOrEqual(WS_HIGH_WATER_BYTES + 64 * 1024);
      expect(stats.heldBytes).toBeLessThanOrEqual(HELD_BOUND);
      expect(stats.channels[0]!.sentBytes).toBeLessThan(TOTAL);
      // Reading again, the client gets the rest.
      (mux.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      const log = await mux.closedChannel(ch.id, 120_000);
      expect(log.stdoutBytes).toBe(TOTAL);
      expect(log.json(T.EXIT)).toMatchObject({ exit_code: 0 });
    }, 180_000);

    it('takes client input within its window and grants it again: 8 MB through wc -c', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'wc', args: ['-c'] });
      await mux.writeAll(ch.id, Buffer.alloc(8_000_000, 0x61));
      mux.send(frame(T.EOF, ch.id));
      const log = await mux.closedChannel(ch.id, 120_000);
      expect(log.text.trim()).toBe('8000000');
    }, 180_000);

    it('holds a PTY producer back while the client grants no window, then delivers every byte', async () => {
      const mux = await connect();
      mux.autoWindow = false;
      const lines = 1_200_000; // ~8.3 MB of `seq`
      const ch = await mux.open({
        type: 'pty',
        command: 'sh',
        args: ['-c', `stty raw -echo; seq 1 ${lines}; echo END`],
        window: 4096,
      });
      await mux.waitFor(ch.id, (l) => l.stdoutBytes === 4096);
      await until('the channel to pause', () => server().stats().channels[0]?.paused === true);
      // Paused for a while: the terminal is not read, so the program is blocked, not finished
      // into the server's memory (the runtime's stream and the channel hold about a chunk).
      await new Promise((r) => setTimeout(r, 1000));
      const held = server().stats().channels[0]!;
      expect(held.heldBytes + held.sourceBytes).toBeLessThanOrEqual(HELD_BOUND);
      expect(held.sentBytes).toBe(4096);
      expect(mux.log(ch.id).has(T.EXIT)).toBe(false);
      const ps = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/processes`,
        headers: owner.headers,
      });
      expect((ps.json().data as { pid: number }[]).map((p) => p.pid)).toContain(ch.body.pid);

      // Granting credit again, every byte arrives in order, then EXIT.
      mux.autoWindow = true;
      const credit = Buffer.alloc(4);
      credit.writeUInt32BE(4096, 0);
      mux.send(frame(T.WINDOW, ch.id, credit));
      const log = await mux.closedChannel(ch.id, 120_000);
      let expected = '';
      for (let i = 1; i <= lines; i++) expected += `${i}\n`;
      expected += 'END\n';
      expect(log.stdoutBytes).toBe(expected.length);
      const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
      expect(sha(log.stdout)).toBe(sha(expected));
      expect(log.json(T.EXIT)).toMatchObject({ exit_code: 0 });
    }, 180_000);

    it('passes PTY input through as bytes and grants its window again once written', async () => {
      const mux = await connect();
      const ch = await mux.open({
        type: 'pty',
        command: 'sh',
        args: [
          '-c',
          'stty raw -echo; echo READY; head -c 128 | od -An -tx1 -v | tr -d " \\n"; echo; echo END',
        ],
      });
      await mux.waitFor(ch.id, (l) => l.text.includes('READY'));
      const bytes = Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i));
      mux.stdin(ch.id, bytes);
      const log = await mux.closedChannel(ch.id, 60_000);
      expect(log.text).toContain(bytes.toString('hex'));
      const granted = log.frames
        .filter((f) => f.type === T.WINDOW)
        .reduce((sum, f) => sum + f.payload.readUInt32BE(0), 0);
      expect(granted).toBe(128);
    }, 120_000);

    it('closes every connection (1001) and kills what they started when the server closes', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      muxOf(ctx.app).closeAll();
      expect(await mux.closed).toBe(1001);
      expect(muxOf(ctx.app).all.filter((c) => c.sandboxId === id)).toHaveLength(0);
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ps = await ctx.app.inject({
          method: 'GET',
          url: `/v1/sandboxes/${id}/processes`,
          headers: owner.headers,
        });
        if (!(ps.json().data as { pid: number }[]).some((p) => p.pid === ch.body.pid)) break;
        if (Date.now() > deadline) throw new Error('the process outlived the server');
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    it('closes a client that sends beyond the window the server granted (1008) and kills its processes', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      const granted = ch.body.window as number;
      mux.stdin(ch.id, Buffer.alloc(granted + 1));
      expect(await mux.closed).toBe(1008);
      const error = mux.log(0).json(T.ERROR) as { error: { code: string } };
      expect(error.error.code).toBe('BAD_REQUEST');
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ps = await ctx.app.inject({
          method: 'GET',
          url: `/v1/sandboxes/${id}/processes`,
          headers: owner.headers,
        });
        if (!(ps.json().data as { pid: number }[]).some((p) => p.pid === ch.body.pid)) break;
        if (Date.now() > deadline) throw new Error('the process outlived its connection');
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  },
  { runtime: true },
);
