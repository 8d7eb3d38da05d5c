import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isRuntimeError, RuntimeError } from '../errors.js';
import { BUILTIN_DEFINITIONS, BUILTIN_NAMES, customizeHooks, finishDebianTree } from './builtins.js';
import {
  normalizeDefinition,
  TEMPLATE_FORMAT_VERSION,
  TEMPLATE_ID_PATTERN,
  templateId,
} from './definition.js';
import type { BuildOptions, Template, TemplateDefinition, TemplateStore } from './interface.js';
import { acquireFileLock } from './lock.js';
import { findMmdebstrap, runMmdebstrap } from './mmdebstrap.js';
import { importImageTree, sha256File } from './oci-import.js';
import { removeTree } from './remove-tree.js';
import { shiftTree } from './shift.js';

/** Options of the filesystem template store. */
export interface TemplateStoreOptions {
  /** Directory holding `<id>/rootfs`, `<id>/template.json` and `<id>/build.log`. */
  dir: string;
  /** The mmdebstrap binary; found on PATH when omitted. */
  mmdebstrapPath?: string;
}

/** What `<id>/template.json` holds. */
export interface TemplateRecord {
  format: number;
  template: Template;
  /** How the tree was made: a Debian definition, or an imported image. */
  source:
    | { kind: 'debian'; definition: TemplateDefinition; packages: string[] }
    | { kind: 'image'; tarSha256: string; imageFormat: 'oci' | 'docker'; layers: number };
  buildSeconds: number;
}

/** Writes a tree into `rootfs` (which does not exist yet), logging through `log`. */
type TreeProducer = (
  rootfs: string,
  log: (line: string) => void,
  signal?: AbortSignal,
) => Promise<Omit<TemplateRecord, 'format' | 'template' | 'buildSeconds'>>;

const LOG_TAIL_LINES = 20;

/** A build under way in this process and the callers waiting on it. */
interface BuildJob {
  promise: Promise<Template>;
  listeners: Set<(line: string) => void>;
  /** Aborts the build; used once every caller that could abort has. */
  controller: AbortController;
  waiting: number;
}

/**
 * Wait for a shared build as one caller: progress goes to this caller's onProgress, and its
 * signal abandons only its own wait. The build itself stops when all its callers have aborted.
 */
function join(job: BuildJob, options: BuildOptions | undefined): Promise<Template> {
  const onProgress = options?.onProgress;
  const signal = options?.signal;
  if (onProgress) job.listeners.add(onProgress);
  job.waiting += 1;
  if (!signal) return job.promise;
  return new Promise<Template>((resolve, reject) => {
    const abandon = () => {
      if (onProgress) job.listeners.delete(onProgress);
      job.waiting -= 1;
      if (job.waiting > 0) {
        reject(signal.reason);
        return;
      }
      // The last caller out stops the build, and hears its outcome once it has cleaned up.
      job.controller.abort(signal.reason);
    };
    job.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abandon));
    if (signal.aborted) abandon();
    else signal.addEventListener('abort', abandon, { once: true });
  });
}

/** A template store on the local filesystem: content-addressed, built once, atomic. */
export function createTemplateStore(options: TemplateStoreOptions): TemplateStore {
  return new FsTemplateStore(path.resolve(options.dir), options.mmdebstrapPath);
}

class FsTemplateStore implements TemplateStore {
  readonly builtins = BUILTIN_NAMES;
  /** Builds under way in this process, by id, with everyone who wants their progress. */
  readonly #inflight = new Map<string, BuildJob>();

  constructor(
    readonly dir: string,
    readonly mmdebstrapPath?: string,
  ) {}

  async resolve(nameOrId: string, options?: BuildOptions): Promise<Template> {
    const builtin = Object.hasOwn(BUILTIN_DEFINITIONS, nameOrId) ? BUILTIN_DEFINITIONS[nameOrId] : undefined;
    if (builtin) return this.build(builtin, options);
    if (TEMPLATE_ID_PATTERN.test(nameOrId)) {
      const record = await this.#read(nameOrId);
      if (record) return record.template;
    } else {
      const named = (await this.list()).filter((template) => template.name === nameOrId);
      const newest = named.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
      if (newest) return newest;
    }
    throw new RuntimeError('TEMPLATE_NOT_FOUND', `template not found: ${nameOrId}`, { template: nameOrId });
  }

  async build(definition: TemplateDefinition, options?: BuildOptions): Promise<Template> {
    const normalized = normalizeDefinition(definition);
    const id = templateId({ kind: 'debian', ...normalized });
    const ready = await this.#read(id);
    if (ready) return ready.template;
    // Checked before any build starts, so a missing tool is reported as such.
    const binary = await findMmdebstrap(this.mmdebstrapPath);
    return this.#ensure(id, normalized.name, options, async (rootfs, log, signal) => {
      await runMmdebstrap({
        binary,
        suite: normalized.suite,
        target: rootfs,
        packages: normalized.packages,
        customizeHooks: customizeHooks(normalized.run),
        onLine: log,
        signal,
      });
      await finishDebianTree(rootfs);
      return { source: { kind: 'debian', definition: { ...definition }, packages: normalized.packages } };
    });
  }

  async importImage(tarPath: string, name: string, options?: BuildOptions): Promise<Template> {
    const nameCheck = normalizeDefinition({ name, packages: [] });
    const tarSha256 = await sha256File(tarPath).catch((err: unknown) => {
      throw new RuntimeError(
        'TEMPLATE_INVALID',
        `cannot read image tarball: ${tarPath}`,
        { path: tarPath },
        {
          cause: err,
        },
      );
    });
    const id = templateId({ kind: 'image', name: nameCheck.name, tarSha256 });
    return this.#ensure(id, nameCheck.name, options, async (rootfs, log, signal) => {
      const workDir = `${rootfs}.image`;
      try {
        const result = await importImageTree(tarPath, rootfs, workDir, log, signal);
        return { source: { kind: 'image', tarSha256, imageFormat: result.format, layers: result.layers } };
      } finally {
        await removeTree(workDir);
      }
    });
  }

  async list(): Promise<Template[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const records = await Promise.all(
      names.filter((n) => TEMPLATE_ID_PATTERN.test(n)).map((n) => this.#read(n)),
    );
    return records
      .filter((record): record is TemplateRecord => record !== undefined)
      .map((record) => record.template)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async remove(id: string): Promise<void> {
    if (!TEMPLATE_ID_PATTERN.test(id) || !(await this.#read(id))) {
      throw new RuntimeError('TEMPLATE_NOT_FOUND', `template not found: ${id}`, { template: id });
    }
    // Rename first so the template disappears at once, then delete at leisure.
    const doomed = path.join(this.dir, `.rm-${id}-${randomBytes(4).toString('hex')}`);
    await rename(path.join(this.dir, id), doomed);
    await removeTree(doomed);
  }

  async #read(id: string): Promise<TemplateRecord | undefined> {
    try {
      const record = JSON.parse(
        await readFile(path.join(this.dir, id, 'template.json'), 'utf8'),
      ) as TemplateRecord;
      if (record.format !== TEMPLATE_FORMAT_VERSION || record.template?.id !== id) return undefined;
      // The directory may have moved (another mount, a copied cache): the path is where it is now.
      record.template.rootfs = path.join(this.dir, id, 'rootfs');
      return record;
    } catch {
      return undefined;
    }
  }

  /** One build per id: shared within this process, serialised across processes by a lock file. */
  #ensure(
    id: string,
    name: string,
    options: BuildOptions | undefined,
    produce: TreeProducer,
  ): Promise<Template> {
    let job = this.#inflight.get(id);
    if (!job) {
      const listeners = new Set<(line: string) => void>();
      const controller = new AbortController();
      const promise = this.#buildOnce(id, name, listeners, produce, controller.signal).finally(() =>
        this.#inflight.delete(id),
      );
      // Every caller gets the outcome through join(); this only keeps an abandoned build quiet.
      promise.catch(() => undefined);
      job = { promise, listeners, controller, waiting: 0 };
      this.#inflight.set(id, job);
    }
    return join(job, options);
  }

  async #buildOnce(
    id: string,
    name: string,
    listeners: Set<(line: string) => void>,
    produce: TreeProducer,
    signal?: AbortSignal,
  ): Promise<Template> {
    const ready = await this.#read(id);
    if (ready) return ready.template;
    await mkdir(this.dir, { recursive: true });
    const release = await acquireFileLock(path.join(this.dir, `.lock-${id}`), signal);
    try {
      // Another process may have finished it while we waited for the lock.
      const built = await this.#read(id);
      if (built) return built.template;
      await this.#removeLeftovers(id);
      return await this.#buildLocked(id, name, listeners, produce, signal);
    } finally {
      await release();
    }
  }

  async #buildLocked(
    id: string,
    name: string,
    listeners: Set<(line: string) => void>,
    produce: TreeProducer,
    signal?: AbortSignal,
  ): Promise<Template> {
    const startedAt = Date.now();
    const finalDir = path.join(this.dir, id);
    const tmpDir = path.join(this.dir, `.tmp-${id}-${randomBytes(6).toString('hex')}`);
    await mkdir(tmpDir, { mode: 0o755 });
    const logStream = createWriteStream(path.join(tmpDir, 'build.log'));
    const tail: string[] = [];
    let logOpen = true;
    const log = (line: string) => {
      // A child killed on abort may still flush lines after the build gave up.
      if (!logOpen) return;
      logStream.write(`${line}\n`);
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      for (const listener of listeners) listener(line);
    };
    try {
      const { source } = await produce(path.join(tmpDir, 'rootfs'), log, signal);
      log('shifting ownership into the sandbox id range');
      const { sizeBytes, entries } = await shiftTree(path.join(tmpDir, 'rootfs'));
      const buildSeconds = Math.round((Date.now() - startedAt) / 100) / 10;
      log(`built ${id} (${name}): ${entries} entries, ${sizeBytes} bytes in ${buildSeconds} s`);
      const template: Template = {
        id,
        name,
        rootfs: path.join(finalDir, 'rootfs'),
        sizeBytes,
        createdAt: new Date().toISOString(),
      };
      const record: TemplateRecord = { format: TEMPLATE_FORMAT_VERSION, template, source, buildSeconds };
      logOpen = false;
      await new Promise<void>((resolve) => logStream.end(resolve));
      await writeFile(path.join(tmpDir, 'template.json'), `${JSON.stringify(record, null, 2)}\n`);
      await rename(tmpDir, finalDir);
      return template;
    } catch (err) {
      log(`build failed: ${err instanceof Error ? err.message : String(err)}`);
      logOpen = false;
      await new Promise<void>((resolve) => logStream.end(resolve));
      await removeTree(tmpDir);
      if (signal?.aborted) throw err;
      if (isRuntimeError(err, 'TEMPLATE_INVALID') || isRuntimeError(err, 'PREREQUISITE_MISSING')) throw err;
      throw new RuntimeError(
        'TEMPLATE_BUILD_FAILED',
        `template ${name} failed to build`,
        { template: name, id, log: tail.join('\n') },
        { cause: err },
      );
    }
  }

  /**
   * Remove what crashed builds left: tmp dirs of `id` (we hold its lock), tmp dirs of other ids
   * nobody holds a lock for (a build keeps its lock for the tmp dir's whole life), and a final dir
   * of `id` without a record.
   */
  async #removeLeftovers(id: string): Promise<void> {
    const entries = await readdir(this.dir);
    const locked = new Set(
      entries.filter((e) => e.startsWith('.lock-')).map((e) => e.slice('.lock-'.length)),
    );
    for (const entry of entries) {
      const owner = /^\.(?:tmp|rm)-(tpl_[0-9a-f]{24})-/.exec(entry)?.[1];
      if (owner === id) await removeTree(path.join(this.dir, entry));
      // Best effort: another process may be removing the same leftover.
      else if (owner !== undefined && !locked.has(owner)) {
        await removeTree(path.join(this.dir, entry)).catch(() => undefined);
      }
    }
    const finalDir = path.join(this.dir, id);
    if (await stat(finalDir).catch(() => undefined)) await removeTree(finalDir);
  }
}
