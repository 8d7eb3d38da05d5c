import type { ExitStatus } from '@corral/runtime';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import {
  collectExec,
  ExecBody,
  type ExecFailure,
  type ExecInput,
  type ExecMode,
  ExecResultSchema,
  finishExec,
  SIGNALS,
  type StartedExec,
  startExec,
} from '../../services/sandboxes/exec.js';
import { STREAM_CONTENT_TYPES, streamExec, streamFormatOf } from '../../services/sandboxes/exec-stream.js';
import { requireState } from '../../services/sandboxes/states.js';
import type { SandboxRow } from '../../store/schema.js';
import { SandboxParams, SECURITY } from './schemas.js';

const ProcessSchema = Type.Object({
  pid: Type.Integer({ description: 'The id of the process inside the sandbox.' }),
  command: Type.String(),
  args: Type.Array(Type.String()),
  started_at: Type.String({ format: 'date-time' }),
  tty: Type.Boolean({ description: 'Started on a terminal (PTY) rather than through exec.' }),
});

const ProcessParams = Type.Object({
  id: SandboxParams.properties.id,
  pid: Type.Integer({ minimum: 1, maximum: 4_194_304 }),
});

const SignalBody = Type.Object(
  {
    signal: Type.Optional(
      Type.Union(
        SIGNALS.map((s) => Type.Literal(s)),
        { default: 'SIGTERM' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** One exec being answered: what finishExec needs when it ends. */
interface RunningExec {
  request: FastifyRequest;
  row: SandboxRow;
  input: ExecInput;
  started: StartedExec;
}

/** How long a shutdown waits for an aborted exec's answer to be written. */
const ABORT_ANSWER_WAIT_MS = 5000;

/** Resolves once `reply`'s response is finished or its connection closed (or after a bound). */
function responseDone(reply: FastifyReply): Promise<void> {
  const res = reply.raw;
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ABORT_ANSWER_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    res.once('finish', done);
    res.once('close', done);
  });
}

/** The answer to an exec cut short because the server is shutting down. */
function closingError() {
  return apiError('CAPACITY_EXHAUSTED', { reason: 'the server is shutting down' });
}

const STREAM_DESCRIPTION =
  'With `Accept: text/event-stream`: Server-Sent Events `start {pid}`, `stdout`/`stderr {data}` as the output is produced, and last `exit {exit_code, duration_ms, timed_out}` (or `error` with the error shape). With `Accept: application/x-ndjson`: the same events as JSON lines `{"type": …}`. Output is UTF-8 text (invalid bytes become U+FFFD). Disconnecting kills the command.';

/**
 * `POST /v1/sandboxes/{id}/exec` (one JSON answer, or a stream by `Accept`),
 * `GET /v1/sandboxes/{id}/processes` and `POST /v1/sandboxes/{id}/processes/{pid}/signal`.
 * Developers exec and signal; any member lists processes.
 */
export function registerSandboxExecRoutes(app: App): void {
  const sandboxes = app.sandboxes;
  const finish = (exec: RunningExec, mode: ExecMode, status: ExitStatus | null, failure?: ExecFailure) =>
    finishExec(sandboxes, exec.request, exec.row, exec.input, mode, exec.started, status, failure);

  // Commands in flight are killed when the server closes (a stream ends with an `error`
  // event, a synchronous exec answers 503), rather than holding the shutdown for as long as
  // they run. Their answers are finished before the server closes its idle connections.
  const active = new Set<() => Promise<void>>();
  app.addHook('preClose', async () => {
    await Promise.all([...active].map((abort) => abort()));
  });

  app.post(
    '/v1/sandboxes/:id/exec',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Run a command in a running sandbox',
        description: `Answers once the command has exited, with its output capped per stream (the cut is flagged in \`truncated\`). ${STREAM_DESCRIPTION}`,
        security: SECURITY,
        params: SandboxParams,
        body: ExecBody,
        response: {
          200: {
            description: 'The command ran (whatever its exit code).',
            content: {
              'application/json': { schema: ExecResultSchema },
              'text/event-stream': { schema: Type.String() },
              'application/x-ndjson': { schema: Type.String() },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'exec');
      const input = request.body;
      const format = streamFormatOf(request.headers.accept);
      const started = await startExec(sandboxes, row, input, format ? 'stream' : 'sync');
      const exec: RunningExec = { request, row, input, started };

      if (format) {
        const stream = streamExec(started, format, request.id);
        let failure: ExecFailure = 'client_disconnected';
        const abort = () => {
          failure = 'server_closing';
          stream.abort(closingError());
          return responseDone(reply);
        };
        active.add(abort);
        stream.done
          .then(
            (status) => finish(exec, 'stream', status, status ? undefined : failure),
            (err: unknown) => {
              request.log.error({ err, sandbox_id: row.id }, 'exec stream failed');
              finish(exec, 'stream', null, 'runtime_error');
            },
          )
          .finally(() => active.delete(abort));
        reply
          .header('content-type', STREAM_CONTENT_TYPES[format])
          .header('cache-control', 'no-cache')
          .header('x-accel-buffering', 'no');
        // A stream body is piped as is (no serializer); the schema types only the JSON answer.
        return reply.send(stream.body as unknown as string);
      }

      // A client that goes away before the answer kills the command, as in streaming mode; so
      // does closing the server (the caller then gets 503).
      let failure: ExecFailure | undefined;
      const kill = (why: ExecFailure) => {
        failure = why;
        started.proc.kill('SIGKILL');
      };
      const onClose = () => {
        if (!reply.raw.writableEnded) kill('client_disconnected');
      };
      const abort = () => {
        kill('server_closing');
        return responseDone(reply);
      };
      reply.raw.once('close', onClose);
      // The client may have gone while the command was starting.
      if (request.raw.socket?.destroyed) kill('client_disconnected');
      active.add(abort);
      try {
        const { result, status } = await collectExec(started, app.config.execOutputLimitBytes);
        finish(exec, 'sync', failure ? null : status, failure);
        if (failure === 'server_closing') throw closingError();
        return reply.type('application/json; charset=utf-8').send(result);
      } catch (err) {
        if (!failure) {
          started.proc.kill('SIGKILL');
          finish(exec, 'sync', null, 'runtime_error');
        }
        throw err;
      } finally {
        reply.raw.off('close', onClose);
        active.delete(abort);
      }
    },
  );

  app.get(
    '/v1/sandboxes/:id/processes',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Processes started through the API (exec, terminals) that are still running',
        security: SECURITY,
        params: SandboxParams,
        response: {
          200: Type.Object({ data: Type.Array(ProcessSchema), next_cursor: Type.Null() }),
        },
      },
    },
    async (request) => {
      const row = await sandboxes.load(request, request.params.id, 'viewer');
      const processes = await sandboxes.runtime.processes(row.id);
      return {
        data: processes.map((p) => ({
          pid: p.pid,
          command: p.command,
          args: p.args,
          started_at: p.startedAt,
          tty: p.tty,
        })),
        next_cursor: null,
      };
    },
  );

  app.post(
    '/v1/sandboxes/:id/processes/:pid/signal',
    {
      config: { scope: 'sandbox:exec' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Send a signal (default SIGTERM) to a process started through the API, and its children',
        security: SECURITY,
        params: ProcessParams,
        body: SignalBody,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      const signal = request.body?.signal ?? 'SIGTERM';
      await sandboxes.runtime.signal(row.id, request.params.pid, signal);
      sandboxes.touch(row.id);
      await sandboxes.record(request, row, 'sandbox.signal', { pid: request.params.pid, signal });
      return reply.code(204).send(null);
    },
  );
}
