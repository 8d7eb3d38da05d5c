import { ConnectionError, CorralError, errorFromBody } from './errors.js';
import type { Transport } from './http.js';
import type { ExecParams, ExecResponse, ProcessSignal } from './types.js';

/** Options of `box.exec` and `box.execStream` (the API's exec fields, camelCased). */
export interface ExecOptions {
  /** Extra environment (wins over the sandbox's secret env). */
  env?: ExecParams['env'];
  /** Working directory (default: the user's home). */
  cwd?: string;
  /** Kill the process tree after this long (server default 30; 0 = no limit). */
  timeoutSeconds?: number;
  /** Written to the command's standard input, which is then closed. */
  stdin?: string;
  /** `user` (default) or `root`. */
  user?: ExecParams['user'];
  /** Aborting kills the command (the server kills it when the request goes away). */
  signal?: AbortSignal;
}

/** How a command ended. */
export interface ExecExit {
  /** The exit code, or 128 + the signal number when killed. */
  exitCode: number;
  durationMs: number;
  /** True when `timeoutSeconds` ran out and the command was killed. */
  timedOut: boolean;
}

/** The answer of `box.exec`: how the command ended and everything it wrote. */
export interface ExecResult extends ExecExit {
  stdout: string;
  stderr: string;
  /** Which streams the server cut at its per-stream cap. */
  truncated: ExecResponse['truncated'];
}

/** One piece of output of a streaming exec. */
export interface ExecOutputEvent {
  type: 'stdout' | 'stderr';
  /** UTF-8 text as produced (a character split across chunks is kept whole). */
  data: string;
}

/** Options of `box.execStream`: callbacks are called for each piece of output, as it comes. */
export interface ExecStreamOptions extends ExecOptions {
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

/** The exec body for `command`, `args` and `options`. */
export function execBody(command: string, args: string[] | undefined, options: ExecOptions): ExecParams {
  const body: ExecParams = { command };
  if (args) body.args = args;
  if (options.env) body.env = options.env;
  if (options.cwd) body.cwd = options.cwd;
  if (options.timeoutSeconds !== undefined) body.timeout_seconds = options.timeoutSeconds;
  if (options.stdin !== undefined) body.stdin = options.stdin;
  if (options.user) body.user = options.user;
  return body;
}

/** The camelCase result of a synchronous exec answer. */
export function toExecResult(answer: ExecResponse): ExecResult {
  return {
    exitCode: answer.exit_code,
    stdout: answer.stdout,
    stderr: answer.stderr,
    durationMs: answer.duration_ms,
    timedOut: answer.timed_out,
    truncated: answer.truncated,
  };
}

type WireEvent =
  | { type: 'start'; pid: number }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exit_code: number; duration_ms: number; timed_out: boolean }
  | {
      type: 'error';
      error: { code: string; message: string; details: Record<string, unknown> };
      request_id: string;
    };

/** The JSON lines of an NDJSON body, decoded as UTF-8 across chunk boundaries. */
async function* ndjsonEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<WireEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffered += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line) as WireEvent;
        newline = buffered.indexOf('\n');
      }
      if (done) break;
    }
    if (buffered.trim()) yield JSON.parse(buffered) as WireEvent;
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}

/**
 * A command running in a sandbox whose output streams as it is produced. Iterate it
 * (`for await (const { type, data } of stream)`), or pass callbacks and `await stream.wait()`.
 * `kill()` signals the command through the API; aborting the `signal` you gave (or `abort()`)
 * drops the connection, and the server then kills the command.
 */
export class ExecStream implements AsyncIterable<ExecOutputEvent> {
  private readonly exitPromise: Promise<ExecExit>;
  private settle!: { resolve(exit: ExecExit): void; reject(err: unknown): void };
  private iterating = false;
  private readonly events: AsyncGenerator<ExecOutputEvent>;

  private constructor(
    /** The command's process id inside the sandbox (see `box.processes`). */
    readonly pid: number,
    private readonly wire: AsyncGenerator<WireEvent>,
    private readonly controller: AbortController,
    private readonly options: ExecStreamOptions,
    private readonly sendSignal: (pid: number, signal: ProcessSignal) => Promise<void>,
  ) {
    this.exitPromise = new Promise<ExecExit>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // wait() may never be called: a failure must not be an unhandled rejection.
    this.exitPromise.catch(() => {});
    this.events = this.run();
  }

  /** Starts `command` and answers once the server has started it (so `pid` is known). */
  static async start(
    transport: Transport,
    sandboxId: string,
    body: ExecParams,
    options: ExecStreamOptions,
    sendSignal: (pid: number, signal: ProcessSignal) => Promise<void>,
  ): Promise<ExecStream> {
    const controller = new AbortController();
    const outer = options.signal;
    if (outer?.aborted) throw outer.reason;
    const onAbort = () => controller.abort(outer?.reason);
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await transport.send({
        method: 'POST',
        path: `/v1/sandboxes/${encodeURIComponent(sandboxId)}/exec`,
        json: body,
        headers: { accept: 'application/x-ndjson' },
        signal: controller.signal,
      });
      if (!res.body)
        throw new ConnectionError('The exec answer has no body', { code: 'CONNECTION_ERROR', status: 0 });
      const wire = ndjsonEvents(res.body);
      const first = await wire.next();
      if (first.done)
        throw new ConnectionError('The exec stream ended before it started', {
          code: 'CONNECTION_ERROR',
          status: 0,
        });
      if (first.value.type === 'error') throw errorFromBody(0, first.value);
      if (first.value.type !== 'start')
        throw new CorralError(`Unexpected first exec event ${first.value.type}`, {
          code: 'BAD_STREAM',
          status: 0,
        });
      return new ExecStream(first.value.pid, wire, controller, options, sendSignal);
    } catch (err) {
      outer?.removeEventListener('abort', onAbort);
      controller.abort();
      throw err;
    }
  }

  private async *run(): AsyncGenerator<ExecOutputEvent> {
    let settled = false;
    try {
      for await (const event of this.wire) {
        if (event.type === 'stdout' || event.type === 'stderr') {
          (event.type === 'stdout' ? this.options.onStdout : this.options.onStderr)?.(event.data);
          yield { type: event.type, data: event.data };
        } else if (event.type === 'exit') {
          settled = true;
          this.settle.resolve({
            exitCode: event.exit_code,
            durationMs: event.duration_ms,
            timedOut: event.timed_out,
          });
          return;
        } else if (event.type === 'error') {
          throw errorFromBody(0, event);
        }
      }
      throw new ConnectionError('The exec stream ended without an exit event', {
        code: 'CONNECTION_ERROR',
        status: 0,
      });
    } catch (err) {
      settled = true;
      const reason = this.controller.signal.aborted ? (this.controller.signal.reason ?? err) : err;
      this.settle.reject(reason);
      throw reason;
    } finally {
      // The loop was left early (a `break`): the connection closes, so the server kills the command.
      if (!settled) {
        this.controller.abort();
        this.settle.reject(
          new CorralError('The exec stream was left before the command exited; the command was killed', {
            code: 'EXEC_STREAM_CLOSED',
            status: 0,
          }),
        );
      }
    }
  }

  /** The output events, in order; ends after the command exits (then `wait()` has its exit). */
  [Symbol.asyncIterator](): AsyncIterator<ExecOutputEvent> {
    if (this.iterating) throw new Error('An ExecStream can be iterated (or waited on) only once');
    this.iterating = true;
    return this.events;
  }

  /** How the command ended; reads (and passes to the callbacks) any output not yet iterated. */
  async wait(): Promise<ExecExit> {
    if (!this.iterating) {
      this.iterating = true;
      void (async () => {
        for await (const _ of this.events) {
          // output goes to the callbacks
        }
      })().catch(() => {});
    }
    return this.exitPromise;
  }

  /** Sends `signal` (default SIGKILL) to the command and its children; the stream then ends with its exit. */
  async kill(signal: ProcessSignal = 'SIGKILL'): Promise<void> {
    await this.sendSignal(this.pid, signal);
  }

  /** Drops the connection: the server kills the command; iteration and `wait()` reject with an AbortError. */
  abort(reason?: unknown): void {
    this.controller.abort(reason);
  }
}
