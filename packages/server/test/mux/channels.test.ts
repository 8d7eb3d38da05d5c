import { afterEach, beforeAll, expect, it } from 'vitest';
import { describeStores, type StoreContext } from '../support/app.js';
import { createSandbox, wsBase } from '../terminal/helpers.js';
import { frame, MuxClient, T } from './client.js';

describeStores(
  'mux: exec, pty and tcp channels on one WebSocket',
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
    beforeAll(async () => {
      owner = await ctx.createCaller();
      id = await createSandbox(ctx, owner.headers, { MUX_SECRET: 'from-secrets' });
      url = `${await wsBase(ctx)}/v1/sandboxes/${id}/ws`;
    });
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });

    it('runs a command: stdin to stdout, stderr apart, EOF, then EXIT and CLOSE', async () => {
      const mux = await connect();
      expect(mux.socket.protocol).toBe('corral.mux.v1');
      const ch = await mux.open({
        type: 'exec',
        command: 'sh',
        args: ['-c', 'tr a-z A-Z; echo "err:$MUX_SECRET:$EXTRA" >&2; exit 7'],
        env: { EXTRA: 'x1' },
      });
      expect(ch.ok).toBe(true);
      expect(ch.body.window).toBe(262144);
      expect(typeof ch.body.pid).toBe('number');
      mux.stdin(ch.id, 'hello mux\n');
      mux.send(frame(T.EOF, ch.id));
      const log = await mux.closedChannel(ch.id);
      expect(log.text).toBe('HELLO MUX\n');
      expect(log.stderr.toString()).toBe('err:from-secrets:x1\n');
      expect(log.json(T.EXIT)).toEqual({ exit_code: 7, signal: null, timed_out: false });
      // Order: both EOFs before EXIT, EXIT before CLOSE, nothing after CLOSE.
      const types = log.frames
        .map((f) => f.type)
        .filter((t) => t !== T.STDOUT && t !== T.STDERR && t !== T.WINDOW);
      expect(types).toEqual([T.OPEN_OK, T.EOF, T.EOF, T.EXIT, T.CLOSE]);
      expect(
        log.frames
          .filter((f) => f.type === T.EOF)
          .map((f) => f.payload[0])
          .sort(),
      ).toEqual([1, 2]);
      // The server gave the stdin credit back.
      const window = log.frames.find((f) => f.type === T.WINDOW);
      expect(window?.payload.readUInt32BE(0)).toBe('hello mux\n'.length);
    });

    it('reports a bad OPEN and a failing command as OPEN_ERROR, the connection stays up', async () => {
      const mux = await connect();
      const bad = await mux.open({ type: 'exec' });
      expect(bad.ok).toBe(false);
      expect((bad.body.error as { code: string }).code).toBe('VALIDATION_ERROR');
      const weird = await mux.open({ type: 'telnet' });
      expect((weird.body.error as { code: string }).code).toBe('VALIDATION_ERROR');
      const ok = await mux.open({ type: 'exec', command: 'echo', args: ['still-up'] });
      expect(ok.ok).toBe(true);
      expect((await mux.closedChannel(ok.id)).text).toBe('still-up\n');
      expect(mux.closeCode).toBeNull();
    });

    it('reports a program that cannot run as its exit status: 127 not found, 125 bad cwd', async () => {
      const mux = await connect();
      const missing = await mux.open({ type: 'exec', command: 'no-such-program' });
      const a = await mux.closedChannel(missing.id);
      expect(a.json(T.EXIT)).toMatchObject({ exit_code: 127 });
      expect(a.stderr.toString()).toMatch(/no-such-program/);
      const badCwd = await mux.open({ type: 'exec', command: 'pwd', cwd: '/nonexistent' });
      const b = await mux.closedChannel(badCwd.id);
      expect(b.json(T.EXIT)).toMatchObject({ exit_code: 125 });
      expect(b.stderr.toString()).toMatch(/nonexistent/);
    });

    it('signals a process (SIGNAL) and kills it on CLOSE', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      mux.send(frame(T.SIGNAL, ch.id, Buffer.from('SIGTERM')));
      const log = await mux.closedChannel(ch.id);
      expect(log.json(T.EXIT)).toMatchObject({ exit_code: 143, signal: 'SIGTERM' });

      const other = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      mux.send(frame(T.CLOSE, other.id));
      await mux.closedChannel(other.id);
      const res = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/processes`,
        headers: owner.headers,
      });
      const pids = (res.json().data as { pid: number }[]).map((p) => p.pid);
      expect(pids).not.toContain(other.body.pid);
    });

    it('runs a login shell on a PTY: typed input echoes back, RESIZE changes stty size', async () => {
      const mux = await connect();
      const ch = await mux.open({ type: 'pty', cols: 100, rows: 30 });
      expect(ch.ok).toBe(true);
      mux.stdin(ch.id, 'echo hi-$((20+22)) $(whoami) $MUX_SECRET; stty size\r');
      await mux.waitFor(ch.id, (l) => /hi-42 user from-secrets/.test(l.text) && /30 100/.test(l.text));
      const resize = Buffer.alloc(4);
      resize.writeUInt16BE(132, 0);
      resize.writeUInt16BE(43, 2);
      mux.send(frame(T.RESIZE, ch.id, resize));
      mux.stdin(ch.id, 'stty size\r');
      await mux.waitFor(ch.id, (l) => /43 132/.test(l.text));
      mux.stdin(ch.id, 'exit 3\r');
      const log = await mux.closedChannel(ch.id);
      expect(log.json(T.EXIT)).toMatchObject({ exit_code: 3 });
    });

    it('interleaves two channels on one connection', async () => {
      const mux = await connect();
      const a = await mux.open({
        type: 'exec',
        command: 'sh',
        args: ['-c', 'for i in 1 2 3 4 5; do echo a$i; read x; done'],
      });
      const b = await mux.open({
        type: 'exec',
        command: 'sh',
        args: ['-c', 'for i in 1 2 3 4 5; do echo b$i; read x; done'],
      });
      for (let i = 1; i <= 5; i++) {
        await mux.waitFor(a.id, (l) => l.text.includes(`a${i}`));
        await mux.waitFor(b.id, (l) => l.text.includes(`b${i}`));
        mux.stdin(b.id, 'go\n');
        mux.stdin(a.id, 'go\n');
      }
      const [la, lb] = await Promise.all([mux.closedChannel(a.id), mux.closedChannel(b.id)]);
      expect(la.text).toBe('a1\na2\na3\na4\na5\n');
      expect(lb.text).toBe('b1\nb2\nb3\nb4\nb5\n');
      expect(la.json(T.EXIT)).toMatchObject({ exit_code: 0 });
      expect(lb.json(T.EXIT)).toMatchObject({ exit_code: 0 });
      // The two channels' frames really were interleaved on the wire.
      const order = mux.order;
      expect(order.indexOf(b.id)).toBeLessThan(order.lastIndexOf(a.id));
    });

    it('opens a TCP stream to a port inside the sandbox; a closed port is an OPEN_ERROR', async () => {
      const mux = await connect();
      const server = await mux.open({
        type: 'exec',
        command: 'perl',
        args: [
          '-MIO::Socket::INET',
          '-e',
          '$|=1; my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 7071, Listen => 5, ReuseAddr => 1) or die "listen: $!"; print "ready\\n"; while (my $c = $s->accept) { while (my $l = <$c>) { print $c uc $l } close $c }',
        ],
      });
      await mux.waitFor(server.id, (l) => l.text.includes('ready'));
      const tcp = await mux.open({ type: 'tcp', port: 7071 });
      expect(tcp.ok, JSON.stringify(tcp.body)).toBe(true);
      mux.stdin(tcp.id, 'over tcp\n');
      await mux.waitFor(tcp.id, (l) => l.text === 'OVER TCP\n');
      mux.send(frame(T.EOF, tcp.id));
      const log = await mux.closedChannel(tcp.id);
      expect(log.text).toBe('OVER TCP\n');
      expect(log.has(T.EOF)).toBe(true);

      const refused = await mux.open({ type: 'tcp', port: 7072 });
      expect(refused.ok).toBe(false);
      expect(refused.body.error).toMatchObject({ code: 'SANDBOX_UNAVAILABLE', details: { port: 7072 } });
      // The connection and the other channels are unharmed.
      const again = await mux.open({ type: 'tcp', port: 7071 });
      mux.stdin(again.id, 'twice\n');
      await mux.waitFor(again.id, (l) => l.text === 'TWICE\n');
      expect(mux.closeCode).toBeNull();
    });

    it('answers PING with PONG and kills everything when the connection closes', async () => {
      const mux = await connect();
      mux.send(frame(T.PING, 0, Buffer.from('abc')));
      await mux.waitFor(0, (l) => l.has(T.PONG));
      expect(
        mux
          .log(0)
          .frames.find((f) => f.type === T.PONG)
          ?.payload.toString(),
      ).toBe('abc');
      const ch = await mux.open({ type: 'exec', command: 'sleep', args: ['600'] });
      const pty = await mux.open({ type: 'pty' });
      await mux.close();
      const deadline = Date.now() + 20_000;
      for (;;) {
        const res = await ctx.app.inject({
          method: 'GET',
          url: `/v1/sandboxes/${id}/processes`,
          headers: owner.headers,
        });
        const pids = (res.json().data as { pid: number }[]).map((p) => p.pid);
        if (!pids.includes(ch.body.pid as number) && !pids.includes(pty.body.pid as number)) break;
        if (Date.now() > deadline) throw new Error(`still running: ${pids.join(',')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  },
  { runtime: true },
);
