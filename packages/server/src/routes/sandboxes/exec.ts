import { Type } from 'typebox';
import type { App } from '../../app.js';
import {
  collectExec,
  ExecBody,
  ExecResultSchema,
  finishExec,
  startExec,
} from '../../services/sandboxes/exec.js';
import { STREAM_CONTENT_TYPES, streamExec, streamFormatOf } from '../../services/sandboxes/exec-stream.js';
import { requireState } from '../../services/sandboxes/states.js';
import { SandboxParams, SECURITY } from './schemas.js';

/** The signals a caller may send to a process it started. */
export const SIGNALS = [
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGQUIT',
] as const;

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

const STREAM_DESCRIPTION =
  'With `Accept: text/event-stream`: Server-Sent Events `start {pid}`, `stdout`/`stderr {data}` as the output is produced, and last `exit {exit_code, duration_ms, timed_out}` (or `error` with the error shape). With `Accept: application/x-ndjson`: the same events as JSON lines `{"type": …}`. Output is UTF-8 text (invalid bytes become U+FFFD). Disconnecting kills the command.';

/**
 * `POST /v1/sandboxes/{id}/exec` (one JSON answer, or a stream by `Accept`),
 * `GET /v1/sandboxes/{id}/processes` and `POST /v1/sandboxes/{id}/processes/{pid}/signal`.
 * Developers exec and signal; any member lists processes.
 */
export function registerSandboxExecRoutes(app: App): void {
  const sandboxes = app.sandboxes;

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

      if (format) {
        const stream = streamExec(started, format, request.id);
        stream.done.then(
          (status) =>
            finishExec(
              sandboxes,
              request,
              row,
              input,
              'stream',
              started,
              status,
              status ? undefined : 'client_disconnected',
            ),
          (err: unknown) => {
            request.log.error({ err, sandbox_id: row.id }, 'exec stream failed');
            finishExec(sandboxes, request, row, input, 'stream', started, null, 'runtime_error');
          },
        );
        reply
          .header('content-type', STREAM_CONTENT_TYPES[format])
          .header('cache-control', 'no-cache')
          .header('x-accel-buffering', 'no');
        // A stream body is piped as is (no serializer); the schema types only the JSON answer.
        return reply.send(stream.body as unknown as string);
      }

      // A client that goes away before the answer kills the command, as in streaming mode.
      let gone = false;
      const onClose = () => {
        if (reply.raw.writableEnded) return;
        gone = true;
        started.proc.kill('SIGKILL');
      };
      reply.raw.once('close', onClose);
      try {
        const { result, status } = await collectExec(started, app.config.execOutputLimitBytes);
        finishExec(
          sandboxes,
          request,
          row,
          input,
          'sync',
          started,
          gone ? null : status,
          gone ? 'client_disconnected' : undefined,
        );
        return reply.type('application/json; charset=utf-8').send(result);
      } catch (err) {
        started.proc.kill('SIGKILL');
        finishExec(sandboxes, request, row, input, 'sync', started, null, 'runtime_error');
        throw err;
      } finally {
        reply.raw.off('close', onClose);
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
