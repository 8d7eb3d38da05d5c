import { afterEach, beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, wsBase } from '../terminal/helpers.js';
import { frame, MuxClient, T } from './client.js';

/** A connection-level ERROR frame's code and reason, from channel 0. */
function connectionError(mux: MuxClient) {
  const body = mux.log(0).json(T.ERROR) as
    | { error: { code: string; details: { reason: string } } }
    | undefined;
  return body?.error;
}

describeStores(
  'mux: malformed frames and limits',
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
    /** Sends `data` on a new connection and expects it closed with `code`. */
    const breaks = async (data: Buffer | string, code: number) => {
      const mux = await connect();
      mux.socket.send(data, { binary: Buffer.isBuffer(data) });
      expect(await mux.closed).toBe(code);
      return mux;
    };
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers);
      url = `${await wsBase(ctx)}/v1/sandboxes/${id}/ws`;
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });

    it('closes with 1003 on a text message and 1002 on frames it cannot decode, with an ERROR frame first', async () => {
      let mux = await breaks('{"type":"open"}', 1003);
      expect(connectionError(mux)?.code).toBe('BAD_REQUEST');

      mux = await breaks(Buffer.from([0x01, 0x00, 0x00]), 1002);
      expect(connectionError(mux)?.details.reason).toMatch(/at least 5 bytes/);
      expect(mux.closeReason).toMatch(/at least 5 bytes/);

      mux = await breaks(frame(0x7f, 1), 1002);
      expect(connectionError(mux)?.details.reason).toMatch(/unknown frame type 0x7f/);

      mux = await breaks(frame(T.OPEN, 0, { type: 'exec', command: 'true' }), 1002);
      mux = await breaks(frame(T.OPEN, 0x8000_0000, { type: 'exec', command: 'true' }), 1002);
      expect(connectionError(mux)?.details.reason).toMatch(/out of range/);
      // Types only the server sends.
      mux = await breaks(frame(T.STDOUT, 1, 'x'), 1002);
      mux = await breaks(frame(T.EXIT, 1, '{}'), 1002);
      mux = await breaks(frame(T.PING, 1), 1002);
      // A WINDOW whose payload is not a u32.
      mux = await breaks(frame(T.WINDOW, 1, Buffer.from([1, 2])), 1002);
      // Above the largest message (1 MiB): the WebSocket layer refuses it.
      mux = await breaks(frame(T.STDIN, 1, Buffer.alloc(1024 * 1024)), 1009);
    });

    it('refuses to reuse an open channel id (1002)', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      mux.send(frame(T.OPEN, ch.id, { type: 'exec', command: 'true' }));
      expect(await mux.closed).toBe(1002);
      expect(connectionError(mux)?.details.reason).toMatch(/already open/);
    });

    it('answers channel mistakes on the channel and keeps the connection', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'cat' });
      // RESIZE on a command (no terminal), an unknown signal, a bad size: ERROR frames on the channel.
      const size = Buffer.alloc(4);
      size.writeUInt16BE(80, 0);
      size.writeUInt16BE(24, 2);
      mux.send(frame(T.RESIZE, ch.id, size));
      mux.send(frame(T.SIGNAL, ch.id, 'SIGBOGUS'));
      await mux.waitFor(ch.id, (l) => l.frames.filter((f) => f.type === T.ERROR).length === 2);
      const errors = mux
        .log(ch.id)
        .frames.filter((f) => f.type === T.ERROR)
        .map((f) => (JSON.parse(f.payload.toString()) as { error: { code: string } }).error.code);
      expect(errors).toEqual(['BAD_REQUEST', 'VALIDATION_ERROR']);
      const pty = await mux.open({ type: 'pty' });
      const zero = Buffer.alloc(4);
      mux.send(frame(T.RESIZE, pty.id, zero));
      await mux.waitFor(pty.id, (l) => l.has(T.ERROR));
      // Frames for channels that are not open are dropped (they may race a CLOSE).
      mux.send(frame(T.STDIN, 999, 'nobody'));
      mux.send(frame(T.CLOSE, 998));
      // Still working.
      mux.stdin(ch.id, 'still here\n');
      await mux.waitFor(ch.id, (l) => l.text === 'still here\n');
      expect(mux.closeCode).toBeNull();
      // OPEN payloads that are not valid requests.
      for (const bad of [
        'not json',
        '[1]',
        '{"type":"tcp","port":0}',
        '{"type":"pty","cols":5000}',
        '{"type":"exec","command":"x","extra":1}',
      ]) {
        const n = 100 + bad.length;
        mux.send(frame(T.OPEN, n, bad));
        const log = await mux.waitFor(n, (l) => l.has(T.OPEN_ERROR));
        expect((log.json(T.OPEN_ERROR) as { error: { code: string } }).error.code).toBe('VALIDATION_ERROR');
      }
      expect(mux.closeCode).toBeNull();
    });

    it('limits a connection to 64 channels; a closed channel frees its id', async () => {
      const mux = await connect();
      const opened = [];
      for (let i = 0; i < 64; i++) opened.push(mux.open({ type: 'exec', command: 'cat' }));
      const channels = await Promise.all(opened);
      expect(channels.every((c) => c.ok)).toBe(true);
      const extra = await mux.open({ type: 'exec', command: 'cat' });
      expect(extra.ok).toBe(false);
      expect(extra.body.error).toMatchObject({ code: 'CONFLICT', details: { max: 64 } });
      // Closing one makes room; its id can be opened again once the server's CLOSE came.
      const first = channels[0]!;
      mux.send(frame(T.CLOSE, first.id));
      await mux.closedChannel(first.id);
      mux.send(frame(T.OPEN, first.id, { type: 'exec', command: 'echo', args: ['reused'] }));
      await mux.waitFor(first.id, (l) => l.frames.filter((f) => f.type === T.CLOSE).length === 2);
      expect(mux.log(first.id).text).toBe('reused\n');
    }, 120_000);
  },
  { runtime: true },
);
