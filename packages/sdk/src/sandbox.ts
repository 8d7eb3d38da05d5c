import {
  type ExecOptions,
  type ExecResult,
  ExecStream,
  type ExecStreamOptions,
  execBody,
  toExecResult,
} from './exec.js';
import { SandboxFiles } from './files.js';
import type { Transport } from './http.js';
import { InteractiveAccess } from './interactive.js';
import { fetchPage, type Page } from './page.js';
import { type ListOptions, SandboxEnv, SandboxProcesses, SandboxSnapshots } from './sandbox-parts.js';
import { Terminal, type TerminalOptions, type WebSocketLike } from './terminal.js';
import type {
  ExecResponse,
  GitDiff,
  RequestOptions,
  SandboxEvent,
  SandboxInfo,
  SandboxStatus,
  TerminalSessionInfo,
  UpdateSandboxParams,
} from './types.js';

/** Settings a Sandbox handle shares with its client. */
export interface SandboxContext {
  transport: Transport;
  /** The preview domain used when the server did not list a port's URL (default `localhost`). */
  previewDomain: string;
  /** The WebSocket constructor for terminals (absent: `box.terminal()` explains what to pass). */
  WebSocket?: WebSocketLike | undefined;
}

/**
 * A handle on one sandbox: its last known state in `info` (refreshed by every lifecycle call
 * and by `refresh()`), and everything you can do with it (ports and tokens: `InteractiveAccess`).
 */
export class Sandbox extends InteractiveAccess {
  /** The sandbox's files. */
  readonly files: SandboxFiles;
  /** Its secret environment variables. */
  readonly env: SandboxEnv;
  /** Its snapshots. */
  readonly snapshots: SandboxSnapshots;
  /** Processes started through the API that still run. */
  readonly processes: SandboxProcesses;
  private readonly transport: Transport;

  constructor(
    private readonly context: SandboxContext,
    /** The sandbox as the API last described it. */
    public info: SandboxInfo,
  ) {
    super(context.transport, info.id, context.WebSocket);
    this.transport = context.transport;
    this.files = new SandboxFiles(this.transport, info.id);
    this.env = new SandboxEnv(this.transport, info.id);
    this.snapshots = new SandboxSnapshots(this.transport, info.id);
    this.processes = new SandboxProcesses(this.transport, info.id);
  }

  /** The sandbox's id (`sbx_…`). */
  get id(): string {
    return this.info.id;
  }

  /** Its name. */
  get name(): string {
    return this.info.name;
  }

  /** Its status when last fetched (call `refresh()` for the current one). */
  get status(): SandboxStatus {
    return this.info.status;
  }

  private path(suffix = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(this.info.id)}${suffix}`;
  }

  private async lifecycle(action: string, options: RequestOptions): Promise<this> {
    this.info = await this.transport.json<SandboxInfo>({
      method: 'POST',
      path: this.path(`/${action}`),
      signal: options.signal,
    });
    return this;
  }

  /**
   * Runs `command` (no shell: use `'sh', ['-c', script]` for one) and answers once it exits,
   * with its output (capped per stream by the server; see `truncated`).
   */
  async exec(command: string, args: string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    const answer = await this.transport.json<ExecResponse>({
      method: 'POST',
      path: this.path('/exec'),
      json: execBody(command, args, options),
      signal: options.signal,
    });
    return toExecResult(answer);
  }

  /**
   * Starts `command` with its output streamed as it is produced: iterate the answer, or give
   * `onStdout`/`onStderr` and `await stream.wait()`. Answers once the command has started.
   */
  async execStream(
    command: string,
    args: string[] = [],
    options: ExecStreamOptions = {},
  ): Promise<ExecStream> {
    return ExecStream.start(
      this.transport,
      this.info.id,
      execBody(command, args, options),
      options,
      (pid, signal) => this.processes.signal(pid, signal),
    );
  }

  /**
   * Opens an interactive shell (PTY) over a WebSocket; answers once attached. In Node 20 use
   * `@corral/sdk/node`'s Corral (it brings the `ws` WebSocket) or pass `WebSocket` yourself.
   */
  async terminal(options: TerminalOptions = {}): Promise<Terminal> {
    return Terminal.open(this.transport, this.context.WebSocket, this.info.id, options, (sessionId) =>
      this.killTerminalSession(sessionId),
    );
  }

  /** The sandbox's terminal sessions (live shells), oldest first. */
  async terminalSessions(options: RequestOptions = {}): Promise<TerminalSessionInfo[]> {
    const answer = await this.transport.json<{ data: TerminalSessionInfo[] }>({
      method: 'GET',
      path: this.path('/terminal/sessions'),
      signal: options.signal,
    });
    return answer.data;
  }

  /** Ends a terminal session's shell and everything it started. */
  async killTerminalSession(sessionId: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: this.path(`/terminal/sessions/${encodeURIComponent(sessionId)}`),
      signal: options.signal,
    });
  }

  /** Re-reads the sandbox's state into `info`. */
  async refresh(options: RequestOptions = {}): Promise<this> {
    this.info = await this.transport.json<SandboxInfo>({
      method: 'GET',
      path: this.path(),
      signal: options.signal,
    });
    return this;
  }

  /** Starts a stopped, hibernated or failed sandbox. */
  start(options: RequestOptions = {}): Promise<this> {
    return this.lifecycle('start', options);
  }

  /** Stops it: every process is killed, the filesystem kept. */
  stop(options: RequestOptions = {}): Promise<this> {
    return this.lifecycle('stop', options);
  }

  /** Freezes every process. */
  pause(options: RequestOptions = {}): Promise<this> {
    return this.lifecycle('pause', options);
  }

  /** Thaws a paused sandbox, or boots a hibernated one. */
  resume(options: RequestOptions = {}): Promise<this> {
    return this.lifecycle('resume', options);
  }

  /** Persists it (memory too where the isolation can) and frees its processes. */
  hibernate(options: RequestOptions = {}): Promise<this> {
    return this.lifecycle('hibernate', options);
  }

  /** Extends its expiry to now + `seconds` (default: its `timeout_seconds`). */
  async keepalive(seconds?: number, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'POST',
      path: this.path('/keepalive'),
      json: seconds === undefined ? {} : { seconds },
      signal: options.signal,
    });
  }

  /** Changes its name, timeouts, resources, metadata, budget or network policy. */
  async update(params: UpdateSandboxParams, options: RequestOptions = {}): Promise<this> {
    this.info = await this.transport.json<SandboxInfo>({
      method: 'PATCH',
      path: this.path(),
      json: params,
      signal: options.signal,
    });
    return this;
  }

  /** Destroys the sandbox and everything in it. */
  async destroy(options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({ method: 'DELETE', path: this.path(), signal: options.signal });
    this.info = { ...this.info, status: 'deleted' };
  }

  /**
   * The public URL of `port` inside the sandbox: the server's own when it lists one, else
   * built the way the server builds them (`{scheme}://{port}-{id}.{previewDomain}[:{port}]`).
   */
  previewUrl(port: number): string {
    const listed = this.info.preview_urls[String(port)];
    if (listed) return listed;
    // Another port's URL shows the server's pattern (scheme, domain, port): reuse it.
    for (const [known, url] of Object.entries(this.info.preview_urls)) {
      const prefix = `//${known}-${this.info.id}.`;
      if (url.includes(prefix)) return url.replace(prefix, `//${port}-${this.info.id}.`);
    }
    const base = new URL(this.info.ws_url.replace(/^ws/, 'http'));
    const hostPort = base.port ? `:${base.port}` : '';
    return `${base.protocol}//${port}-${this.info.id}.${this.context.previewDomain}${hostPort}`;
  }

  /** The sandbox's audit events (who did what, when), newest first; the page iterates them all. */
  async events(options: ListOptions = {}): Promise<Page<SandboxEvent>> {
    return fetchPage(
      (cursor) =>
        this.transport.json<{ data: SandboxEvent[]; next_cursor: string | null }>({
          method: 'GET',
          path: this.path('/events'),
          query: { limit: options.limit, cursor },
          signal: options.signal,
        }),
      (e) => e,
      options.cursor,
    );
  }

  /** `git diff HEAD` (untracked files as added) of the repository at `path` (default home), as unified text. */
  async gitDiff(path?: string, options: RequestOptions = {}): Promise<string> {
    const res = await this.transport.send({
      method: 'GET',
      path: this.path('/git/diff'),
      query: { path },
      signal: options.signal,
    });
    return res.text();
  }

  /** The same diff, one entry per file. */
  async gitDiffFiles(path?: string, options: RequestOptions = {}): Promise<GitDiff['files']> {
    const answer = await this.transport.json<GitDiff>({
      method: 'GET',
      path: this.path('/git/diff'),
      query: { path, format: 'json' },
      signal: options.signal,
    });
    return answer.files;
  }
}
