import { type BuildOptions, isRuntimeError, type Template } from '@corral/runtime';
import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { isoNow } from '../store/db.js';
import type { Database } from '../store/schema.js';

/** How often (at most) a build's progress is written to its row. */
export const LOG_WRITE_INTERVAL_MS = 500;
/** The most of a build log kept (characters; the tail is kept). */
export const MAX_LOG_CHARS = 1024 * 1024;
/** Builds and imports running at once on this server; more wait their turn (still `building`). */
export const MAX_CONCURRENT_BUILDS = 2;

/**
 * A build's progress lines, written into `templates.log` at most every `intervalMs` (one write
 * of the whole text, so both dialects take the same SQL), keeping the last `maxChars`.
 */
export class BuildLog {
  #text = '';
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly id: string,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs = LOG_WRITE_INTERVAL_MS,
    private readonly maxChars = MAX_LOG_CHARS,
  ) {}

  /** Appends one line (NUL characters dropped: PostgreSQL text cannot hold them). */
  line(text: string): void {
    this.#text += `${text.replace(/\u0000/g, '')}\n`;
    if (this.#text.length > this.maxChars) {
      const cut = this.#text.slice(this.#text.length - this.maxChars);
      const newline = cut.indexOf('\n');
      this.#text = newline >= 0 && newline < cut.length - 1 ? cut.slice(newline + 1) : cut;
    }
    this.#dirty = true;
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.#write();
    }, this.intervalMs);
  }

  /** Stops the timer and waits for any write under way; the caller writes the final text. */
  async close(): Promise<string> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#dirty = false;
    await this.#writing;
    return this.#text;
  }

  #write(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (!this.#dirty) return;
      this.#dirty = false;
      await this.db
        .updateTable('templates')
        .set({ log: this.#text })
        .where('id', '=', this.id)
        .execute()
        .catch((err: unknown) => this.log.warn({ err, template_id: this.id }, 'could not write build log'));
    });
    return this.#writing;
  }
}

/** A counting semaphore: `acquire` waits (abortably) for one of `size` slots. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.#free > 0) {
      this.#free -= 1;
    } else {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.#waiting.splice(this.#waiting.indexOf(wake), 1);
          reject(signal.reason);
        };
        this.#waiting.push(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    };
  }
}

/** One background build: what makes the tree, and what to tidy afterwards. */
export interface BuildJob {
  /** The `templates` row it fills in. */
  id: string;
  /** The first log line. */
  describe: string;
  produce(options: BuildOptions): Promise<Template>;
  /** Runs after the build, whatever its outcome (e.g. removing an uploaded tarball). */
  cleanup?(): Promise<void>;
  /** Rewrites a runtime message before it is stored (e.g. to hide a server path). */
  redact?(text: string): string;
}

/**
 * Template builds and imports running in the background of this server: each fills in its row
 * (`building` → `ready` with `runtime_id` and `size_bytes`, or `failed` with `error`) and its
 * log. `cancel` and `close` stop them (the runtime stops a build once nobody waits for it).
 */
export class TemplateBuilds {
  readonly #jobs = new Map<string, { controller: AbortController; done: Promise<void> }>();
  readonly #slots = new Slots(MAX_CONCURRENT_BUILDS);

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts `job` in the background (its row must exist, `building`). */
  start(job: BuildJob): void {
    const controller = new AbortController();
    const done = this.#run(job, controller.signal).finally(() => this.#jobs.delete(job.id));
    this.#jobs.set(job.id, { controller, done });
  }

  /** True while the build of row `id` runs (or waits for a slot) in this process. */
  running(id: string): boolean {
    return this.#jobs.has(id);
  }

  /** Stops the build of row `id` (it ends `failed` with `reason`) and waits until it has. */
  async cancel(id: string, reason = 'cancelled'): Promise<void> {
    const job = this.#jobs.get(id);
    if (!job) return;
    job.controller.abort(new Error(reason));
    await job.done;
  }

  /** Stops every build (the server is shutting down) and waits for their rows to be written. */
  async close(): Promise<void> {
    await Promise.all([...this.#jobs.keys()].map((id) => this.cancel(id, 'interrupted by a shutdown')));
  }

  /** Waits for the build of row `id` to end (tests, and callers that need the outcome). */
  async settled(id: string): Promise<void> {
    await this.#jobs.get(id)?.done;
  }

  async #run(job: BuildJob, signal: AbortSignal): Promise<void> {
    const redact = job.redact ?? ((text: string) => text);
    const buildLog = new BuildLog(this.db, job.id, this.log);
    buildLog.line(job.describe);
    let release: (() => void) | null = null;
    try {
      release = await this.#slots.acquire(signal);
      const template = await job.produce({ signal, onProgress: (line) => buildLog.line(redact(line)) });
      buildLog.line(`ready: ${template.id}, ${template.sizeBytes} bytes`);
      const log = await buildLog.close();
      await this.db
        .updateTable('templates')
        .set({
          status: 'ready',
          runtime_id: template.id,
          size_bytes: template.sizeBytes,
          finished_at: isoNow(),
          log,
        })
        .where('id', '=', job.id)
        .execute();
    } catch (err) {
      const error = signal.aborted
        ? String((signal.reason as Error)?.message ?? 'cancelled')
        : this.#message(err, redact);
      buildLog.line(`failed: ${error}`);
      const log = await buildLog.close();
      await this.db
        .updateTable('templates')
        .set({ status: 'failed', error, finished_at: isoNow(), log })
        .where('id', '=', job.id)
        .execute()
        .catch((writeErr: unknown) =>
          this.log.error({ err: writeErr, template_id: job.id }, 'could not record a failed template build'),
        );
    } finally {
      release?.();
      await job
        .cleanup?.()
        .catch((err: unknown) => this.log.warn({ err, template_id: job.id }, 'build cleanup failed'));
    }
  }

  /** What a failed build stores as `error`: the runtime's own words, or a generic line for internal faults. */
  #message(err: unknown, redact: (text: string) => string): string {
    if (isRuntimeError(err) && err.code !== 'INTERNAL') return redact(err.message).slice(0, 2000);
    this.log.error({ err }, 'template build failed');
    return 'the build failed on the server';
  }
}
