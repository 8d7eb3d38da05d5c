import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { createApiKey } from '../../src/services/keys.js';
import { isoNow } from '../../src/store/db.js';
import {
  createTestApp,
  describeStores,
  expectError,
  type StoreContext,
  type TestApp,
} from '../support/app.js';

type Headers = { authorization: string };
type Event = { type: string; [field: string]: unknown };

/** An exec request over a real socket, its events read as they arrive. */
interface OpenStream {
  req: ClientRequest;
  res: IncomingMessage;
  /** The next event (SSE or NDJSON, parsed), or null at the end of the body. */
  next(): Promise<Event | null>;
  /** Every remaining event up to the end of the body. */
  rest(): Promise<Event[]>;
}

/** Parses SSE blocks (`event:`/`data:` lines; `:` comments skipped) or NDJSON lines. */
function parseEvents(format: 'sse' | 'ndjson', text: string): { events: Event[]; rest: string } {
  const separator = format === 'sse' ? '\n\n' : '\n';
  const parts = text.split(separator);
  const rest = parts.pop() ?? '';
  const events: Event[] = [];
  for (const part of parts) {
    if (format === 'ndjson') {
      events.push(JSON.parse(part));
      continue;
    }
    let type = 'message';
    let data = '';
    for (const line of part.split('\n')) {
      if (line.startsWith('event: ')) type = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data) events.push({ type, ...JSON.parse(data) });
  }
  return { events, rest };
}

async function openStream(
  port: number,
  id: string,
  headers: Headers,
  format: 'sse' | 'ndjson',
  body: unknown,
): Promise<OpenStream> {
  const payload = JSON.stringify(body);
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: `/v1/sandboxes/${id}/exec`,
    headers: {
      ...headers,
      accept: format === 'sse' ? 'text/event-stream' : 'application/x-ndjson',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    },
  });
  req.end(payload);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  res.setEncoding('utf8');
  const queue: Event[] = [];
  let buffered = '';
  let ended = false;
  let wake: (() => void) | null = null;
  res.on('data', (chunk: string) => {
    const parsed = parseEvents(format, buffered + chunk);
    buffered = parsed.rest;
    queue.push(...parsed.events);
    wake?.();
  });
  res.on('end', () => {
    ended = true;
    wake?.();
  });
  res.on('error', () => {
    ended = true;
    wake?.();
  });
  const next = async (): Promise<Event | null> => {
    while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift() ?? null;
  };
  const rest = async () => {
    const events: Event[] = [];
    for (let event = await next(); event; event = await next()) events.push(event);
    return events;
  };
  return { req, res, next, rest };
}

/** Polls `check` until it is true (or fails after a generous deadline). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** stdout and stderr of `events`, each joined. */
function outputOf(events: Event[]) {
  const join = (type: string) =>
    events
      .filter((e) => e.type === type)
      .map((e) => e.data)
      .join('');
  return { stdout: join('stdout'), stderr: join('stderr') };
}

describeStores(
  'sandboxes: exec streaming (SSE, NDJSON), client disconnect, processes and signals',
  (ctx) => {
    let owner: Awaited<ReturnType<StoreContext['createCaller']>>;
    let id: string;
    let port: number;
    beforeAll(async () => {
      owner = await ctx.createCaller();
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner.headers,
        payload: { env: { TOKEN: 'x-secret-123' } },
      });
      expect(created.statusCode, created.body).toBe(201);
      id = created.json().id;
      await ctx.app.listen({ port: 0, host: '127.0.0.1' });
      port = (ctx.app.server.address() as AddressInfo).port;
    });

    const COMMAND = { command: 'sh', args: ['-c', 'echo a; sleep 0.2; echo b >&2; printenv TOKEN; exit 3'] };

    it('streams SSE: start with the pid, output in order, exit last; headers for proxies', async () => {
      const stream = await openStream(port, id, owner.headers, 'sse', COMMAND);
      expect(stream.res.statusCode).toBe(200);
      expect(stream.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(stream.res.headers['cache-control']).toBe('no-cache');
      expect(stream.res.headers['x-accel-buffering']).toBe('no');
      expect(stream.res.headers['x-request-id']).toMatch(/^req_/);
      expect(stream.res.headers['x-ratelimit-limit']).toBeDefined();
      const events = await stream.rest();
      expect(events[0]).toEqual({ type: 'start', pid: expect.any(Number) });
      const exit = events.at(-1);
      expect(exit).toEqual({ type: 'exit', exit_code: 3, duration_ms: expect.any(Number), timed_out: false });
      expect(outputOf(events)).toEqual({ stdout: 'a\nx-secret-123\n', stderr: 'b\n' });
      const firstStdout = events.findIndex((e) => e.type === 'stdout');
      const firstStderr = events.findIndex((e) => e.type === 'stderr');
      expect(firstStdout).toBeGreaterThan(0);
      expect(firstStderr).toBeGreaterThan(firstStdout);
    });

    it('streams NDJSON: the same events as JSON lines', async () => {
      const stream = await openStream(port, id, owner.headers, 'ndjson', COMMAND);
      expect(stream.res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
      const events = await stream.rest();
      expect(events[0]).toEqual({ type: 'start', pid: expect.any(Number) });
      expect(events.at(-1)).toMatchObject({ type: 'exit', exit_code: 3, timed_out: false });
      expect(outputOf(events)).toEqual({ stdout: 'a\nx-secret-123\n', stderr: 'b\n' });
      expect(events.filter((e) => e.type === 'exit')).toHaveLength(1);
    });

    it('keeps a character split across chunks whole; invalid bytes become U+FFFD', async () => {
      const stream = await openStream(port, id, owner.headers, 'ndjson', {
        command: 'sh',
        // "é" is \303\251: its two bytes leave the process in two writes.
        args: ['-c', "printf '\\303'; sleep 0.2; printf '\\251\\n'; printf '\\377\\n' >&2"],
      });
      const events = await stream.rest();
      expect(outputOf(events)).toEqual({ stdout: 'é\n', stderr: '\uFFFD\n' });
    });

    it('streams large output whole (the command waits while the body is full)', async () => {
      const stream = await openStream(port, id, owner.headers, 'ndjson', {
        command: 'sh',
        args: ['-c', 'head -c 6291456 /dev/zero | tr "\\000" a; echo end >&2'],
      });
      const events = await stream.rest();
      const output = outputOf(events);
      expect(output.stdout.length).toBe(6 * 1024 * 1024);
      expect(/^a+$/.test(output.stdout)).toBe(true);
      expect(output.stderr).toBe('end\n');
      expect(events.at(-1)).toMatchObject({ type: 'exit', exit_code: 0 });
    });

    it('reports a timeout in the exit event', async () => {
      const stream = await openStream(port, id, owner.headers, 'sse', {
        command: 'sleep',
        args: ['30'],
        timeout_seconds: 1,
      });
      const events = await stream.rest();
      expect(events.at(-1)).toMatchObject({ type: 'exit', timed_out: true });
    });

    it('lists a streaming command while it runs, and a signal ends it', async () => {
      const stream = await openStream(port, id, owner.headers, 'sse', {
        command: 'sh',
        args: ['-c', 'echo ready; exec sleep 300'],
        timeout_seconds: 0,
      });
      const start = await stream.next();
      expect(start?.type).toBe('start');
      const pid = start?.pid as number;
      // The output arrives while the command is still running: it is streamed, not buffered.
      expect(await stream.next()).toEqual({ type: 'stdout', data: 'ready\n' });

      const listed = await ctx.app.inject({
        method: 'GET',
        url: `/v1/sandboxes/${id}/processes`,
        headers: owner.headers,
      });
      expect(listed.statusCode, listed.body).toBe(200);
      const mine = listed.json().data.find((p: { pid: number }) => p.pid === pid);
      expect(mine).toEqual({
        pid,
        command: 'sh',
        args: ['-c', 'echo ready; exec sleep 300'],
        started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        tty: false,
      });
      expect(listed.json().next_cursor).toBeNull();

      // No body: the default signal, SIGTERM.
      const signalled = await ctx.app.inject({
        method: 'POST',
        url: `/v1/sandboxes/${id}/processes/${pid}/signal`,
        headers: owner.headers,
      });
      expect(signalled.statusCode, signalled.body).toBe(204);
      const events = await stream.rest();
      expect(events.at(-1)).toMatchObject({ type: 'exit', exit_code: 128 + 15, timed_out: false });
      await eventually(
        async () => !(await ctx.engine.runtime.processes(id)).some((p) => p.pid === pid),
        'the signalled process to leave the list',
      );
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/processes/${pid}/signal`,
          headers: owner.headers,
          payload: { signal: 'SIGKILL' },
        }),
        'PROCESS_NOT_FOUND',
      );
    });

    it('kills the command when the client disconnects', async () => {
      for (const format of ['sse', 'ndjson'] as const) {
        const stream = await openStream(port, id, owner.headers, format, {
          command: 'sleep',
          args: ['300'],
          timeout_seconds: 0,
        });
        const start = await stream.next();
        const pid = start?.pid as number;
        expect((await ctx.engine.runtime.processes(id)).map((p) => p.pid)).toContain(pid);
        stream.req.destroy();
        await eventually(
          async () => !(await ctx.engine.runtime.processes(id)).some((p) => p.pid === pid),
          `the ${format} command to be killed after the client left`,
        );
      }
      const metrics = await ctx.app.metrics.registry.metrics();
      expect(metrics).toMatch(/corral_exec_total\{mode="stream",result="error"\} [1-9]/);
      expect(metrics).toMatch(/corral_exec_total\{mode="stream",result="ok"\} [1-9]/);
    });

    it('kills a synchronous command when its client disconnects too', async () => {
      const payload = JSON.stringify({ command: 'sleep', args: ['301'], timeout_seconds: 0 });
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/v1/sandboxes/${id}/exec`,
        headers: { ...owner.headers, 'content-type': 'application/json' },
      });
      req.on('error', () => undefined);
      req.end(payload);
      const running = async () =>
        (await ctx.engine.runtime.processes(id)).filter((p) => p.command === 'sleep' && p.args[0] === '301');
      await eventually(async () => (await running()).length === 1, 'the command to start');
      req.destroy();
      await eventually(async () => (await running()).length === 0, 'the command to be killed');
    });

    it('answers errors before streaming in the error shape', async () => {
      const sse = { ...owner.headers, accept: 'text/event-stream' };
      expectError(
        await ctx.app.inject({ method: 'POST', url: `/v1/sandboxes/${id}/exec`, headers: sse, payload: {} }),
        'VALIDATION_ERROR',
      );
      const stranger = await ctx.createCaller();
      expectError(
        await ctx.app.inject({
          method: 'POST',
          url: `/v1/sandboxes/${id}/exec`,
          headers: { ...stranger.headers, accept: 'application/x-ndjson' },
          payload: { command: 'true' },
        }),
        'SANDBOX_NOT_FOUND',
      );
    });
  },
  { runtime: true },
);

describe('sandboxes: exec while the server closes', () => {
  it('kills commands in flight: a stream ends with an error event, a synchronous exec answers 503', async () => {
    const t = await createTestApp({ runtime: true });
    const runtime = t.engine!.runtime;
    try {
      const owner = await createCallerIn(t);
      const created = await t.app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: owner,
        payload: {},
      });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (t.app.server.address() as AddressInfo).port;

      const stream = await openStream(port, id, owner, 'sse', {
        command: 'sleep',
        args: ['302'],
        timeout_seconds: 0,
      });
      const pid = (await stream.next())?.pid as number;
      const sync = fetch(`http://127.0.0.1:${port}/v1/sandboxes/${id}/exec`, {
        method: 'POST',
        headers: { ...owner, 'content-type': 'application/json' },
        body: JSON.stringify({ command: 'sleep', args: ['303'], timeout_seconds: 0 }),
      });
      await eventually(
        async () => (await runtime.processes(id)).some((p) => p.args[0] === '303'),
        'the synchronous command to start',
      );

      const closing = t.app.close();
      const events = await stream.rest();
      expect(events.at(-1)).toMatchObject({ type: 'error', error: { code: 'CAPACITY_EXHAUSTED' } });
      const answer = await sync;
      expect(answer.status).toBe(503);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('CAPACITY_EXHAUSTED');
      await closing;
      await eventually(
        async () => !(await runtime.processes(id)).some((p) => p.pid === pid || p.args[0] === '303'),
        'both commands to be killed',
      );
    } finally {
      await t.close();
    }
  });
});

/** An owner's API key headers in a standalone test app. */
async function createCallerIn(t: TestApp): Promise<Headers> {
  const userId = newId('usr');
  const workspaceId = newId('ws');
  const now = isoNow();
  await t.store.db
    .insertInto('users')
    .values({
      id: userId,
      email: `${userId}@example.test`,
      name: 'Owner',
      password_hash: null,
      is_admin: 0,
      created_at: now,
    })
    .execute();
  await t.store.db
    .insertInto('workspaces')
    .values({
      id: workspaceId,
      name: 'W',
      plan: 'team',
      personal: 0,
      created_by: userId,
      created_at: now,
      deleted_at: null,
    })
    .execute();
  await t.store.db
    .insertInto('members')
    .values({ workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: now })
    .execute();
  const key = await createApiKey(
    { store: t.store, audit: t.app.audit },
    { userId, workspaceId, name: 'owner key', scopes: ['*'] },
  );
  return { authorization: `Bearer ${key.key}` };
}
