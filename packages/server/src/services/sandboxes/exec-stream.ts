import { PassThrough, type Readable } from 'node:stream';
import type { ExitStatus } from '@corral/runtime';
import { type ApiError, type ErrorBody, errorBody, toApiError } from '../../errors.js';
import { durationMs, type StartedExec } from './exec.js';

/*
 * The streaming answer of an exec: the output as it is produced, as Server-Sent Events or as
 * NDJSON. Events, in order: `start {pid}`, any number of `stdout`/`stderr {data}`, and last
 * `exit {exit_code, duration_ms, timed_out}` (or `error` with the API error shape when the
 * runtime fails mid-way). Output is not capped here: it is passed on, not held.
 */

/** The two streaming formats an exec answers in. */
export type StreamFormat = 'sse' | 'ndjson';

/** The Content-Type of each streaming format. */
export const STREAM_CONTENT_TYPES: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** How often an idle SSE stream gets a comment line, so proxies do not close it as idle. */
const SSE_HEARTBEAT_MS = 15_000;

/**
 * The streaming format an `Accept` header asks for: `text/event-stream` wins over
 * `application/x-ndjson`; anything else (or no header) is null, the JSON answer.
 */
export function streamFormatOf(accept: string | undefined): StreamFormat | null {
  if (!accept) return null;
  const types = accept
    .toLowerCase()
    .split(',')
    .map((part) => part.split(';')[0]?.trim());
  if (types.includes('text/event-stream')) return 'sse';
  if (types.includes('application/x-ndjson')) return 'ndjson';
  return null;
}

/** One event of an exec stream. */
export type ExecStreamEvent =
  | { type: 'start'; pid: number }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exit_code: number; duration_ms: number; timed_out: boolean }
  | ({ type: 'error' } & ErrorBody);

/**
 * One event in `format`: SSE `event: <type>` with the rest as the JSON `data:` line, or one
 * NDJSON line holding the whole event. JSON escapes newlines, so `data:` is always one line.
 */
export function encodeEvent(format: StreamFormat, event: ExecStreamEvent): string {
  if (format === 'ndjson') return `${JSON.stringify(event)}\n`;
  const { type, ...payload } = event;
  return `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** A running stream: the body to send, and the promise of how the command ended. */
export interface ExecStream {
  /** The response body; the caller hands it to `reply.send()`. */
  body: PassThrough;
  /** The exit status, or null when the client went away first (the command was then killed). */
  done: Promise<ExitStatus | null>;
  /** Ends the stream now with an `error` event (e.g. the server is closing) and kills the command. */
  abort(err: ApiError): void;
}

/**
 * Streams a started command into a new body in `format`. Output is decoded as UTF-8 with a
 * streaming decoder per stream (a character split across chunks is kept whole; invalid bytes
 * become U+FFFD). A slow client holds the command back (its pipes are paused while the body
 * is full), never the server's memory. A body closed before the exit event — the client
 * disconnected — kills the command's process tree with SIGKILL.
 */
export function streamExec(started: StartedExec, format: StreamFormat, requestId: string): ExecStream {
  const { proc } = started;
  const body = new PassThrough();
  let ended = false;
  let gone = false;
  let waitingForDrain = false;
  const outputs: Readable[] = [proc.stdout, proc.stderr];
  const heartbeat = setInterval(() => {
    if (!ended && !body.destroyed && format === 'sse') body.write(': keep-alive\n\n');
  }, SSE_HEARTBEAT_MS);
  heartbeat.unref();

  const write = (event: ExecStreamEvent): void => {
    if (ended || body.destroyed) return;
    if (!body.write(encodeEvent(format, event)) && !waitingForDrain) {
      waitingForDrain = true;
      for (const output of outputs) output.pause();
      body.once('drain', () => {
        waitingForDrain = false;
        if (!gone) for (const output of outputs) output.resume();
      });
    }
  };
  const finish = (event: ExecStreamEvent): void => {
    write(event);
    ended = true;
    clearInterval(heartbeat);
    if (!body.destroyed) body.end();
  };

  body.once('close', () => {
    clearInterval(heartbeat);
    if (ended) return;
    gone = true;
    proc.kill('SIGKILL');
    // Drain what is left so the process's pipes close and wait() can settle.
    for (const output of outputs) output.resume();
  });

  write({ type: 'start', pid: proc.pid });
  const pumped = (['stdout', 'stderr'] as const).map(
    (type, i) =>
      new Promise<void>((resolve, reject) => {
        const output = outputs[i] as Readable;
        const decoder = new TextDecoder();
        output.on('data', (chunk: Buffer) => {
          const data = decoder.decode(chunk, { stream: true });
          if (data) write({ type, data });
        });
        output.on('error', reject);
        output.once('end', () => {
          const tail = decoder.decode();
          if (tail) write({ type, data: tail });
          resolve();
        });
      }),
  );

  const done = Promise.all([proc.wait(), ...pumped]).then(
    ([status]) => {
      if (gone) return null;
      finish({
        type: 'exit',
        exit_code: status.exitCode,
        duration_ms: durationMs(started),
        timed_out: status.timedOut,
      });
      return status;
    },
    (err: unknown) => {
      proc.kill('SIGKILL');
      if (gone) return null;
      finish({ type: 'error', ...errorBody(toApiError(err), requestId) });
      throw err;
    },
  );
  const abort = (err: ApiError): void => {
    if (ended || gone) return;
    finish({ type: 'error', ...errorBody(err, requestId) });
    gone = true;
    proc.kill('SIGKILL');
    for (const output of outputs) output.resume();
  };
  return { body, done, abort };
}
