import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { isRuntimeError, RuntimeError } from '../errors.js';
import type { FileInfo, FileType, SandboxFiles } from '../interface.js';
import { baseName, normalizeSandboxPath, parentDir } from './files-paths.js';
import {
  type ExecFn,
  type ExecUser,
  REMOVE_TIMEOUT_MS,
  runChecked,
  type ScriptOptions,
} from './files-run.js';
import {
  COMMIT_SCRIPT,
  FIND_FIELDS,
  LIST_SCRIPT,
  MKDIR_SCRIPT,
  MOVE_SCRIPT,
  READ_SCRIPT,
  REMOVE_SCRIPT,
  STAT_SCRIPT,
  TAR_IN_SCRIPT,
  TAR_OUT_SCRIPT,
  WRITE_KNOWN_SCRIPT,
} from './files-scripts.js';
import { ArchiveInspector } from './files-tar-inspect.js';
import { openStream, readUpTo, upload } from './files-transfer.js';

export type { ExecFn } from './files-run.js';

/** Writes up to this size are taken whole and done in one process; larger ones stream. */
const SMALL_WRITE_BYTES = 1024 * 1024;

export interface ExecFilesOptions {
  /** Who the file operations run as inside the sandbox; default 'user'. */
  user?: ExecUser;
}

/**
 * SandboxFiles for any driver that can exec: every operation is a short process inside the
 * sandbox (coreutils, findutils, tar), so paths resolve within the sandbox's root with the
 * sandbox user's permissions, and no `..` or symlink can reach a host file.
 */
export function createExecFiles(exec: ExecFn, options: ExecFilesOptions = {}): SandboxFiles {
  const user = options.user ?? 'user';
  const run = (
    id: string,
    script: string,
    args: string[],
    context: Record<string, unknown>,
    scriptOptions?: ScriptOptions,
  ) => runChecked(exec, id, user, script, args, context, scriptOptions);

  return {
    /** Entries sorted by name (code-unit order); `.` and `..` are not listed. */
    async list(id, path) {
      const dir = normalizeSandboxPath(path);
      const out = await run(id, LIST_SCRIPT, [dir], { op: 'list', path: dir });
      const prefix = dir === '/' ? '/' : `${dir}/`;
      return parseFind(out)
        .map((entry) => ({ ...entry, path: prefix + entry.name }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async stat(id, path) {
      const file = normalizeSandboxPath(path);
      const out = await run(id, STAT_SCRIPT, [file], { op: 'stat', path: file });
      const [entry] = parseFind(out);
      if (entry === undefined) throw new RuntimeError('INTERNAL', 'stat printed nothing', { path: file });
      return { ...entry, name: baseName(file), path: file };
    },

    async read(id, path, range) {
      const file = normalizeSandboxPath(path);
      const { start, count } = checkRange(range);
      const args = [file, String(start), count === null ? '' : String(count)];
      return openStream(exec, id, user, READ_SCRIPT, args, { op: 'read', path: file });
    },

    async write(id, path, data, writeOptions) {
      data.pause(); // a caller's flowing stream must not lose data while the process starts
      data.on('error', () => {}); // an early error is still seen by readUpTo / pipeline
      const file = normalizeSandboxPath(path);
      const mode = checkMode(writeOptions?.mode);
      if (file === '/') throw new RuntimeError('IS_A_DIRECTORY', '/: Is a directory', { path: file });
      const context = { op: 'write', path: file };
      const modeArg = mode === undefined ? '' : mode.toString(8);
      // Most writes are small: with the whole body in hand, one process writes and renames it.
      const head = await readUpTo(data, SMALL_WRITE_BYTES);
      if (head.ended) {
        const body = Buffer.concat(head.chunks);
        await run(id, WRITE_KNOWN_SCRIPT, [file, String(body.length), modeArg], context, { stdin: body });
        return body.length;
      }
      const { tempPath, bytes } = await upload(exec, id, user, data, {
        dir: parentDir(file),
        prefix: '.corral-tmp-',
        notDirectory: file,
        initial: head.chunks,
        context,
      });
      // Rename within the temp file's (physical) directory: same filesystem, same directory.
      const target = posix.join(parentDir(tempPath), baseName(file));
      await run(id, COMMIT_SCRIPT, [tempPath, target, modeArg], context);
      return bytes;
    },

    async mkdir(id, path) {
      const dir = normalizeSandboxPath(path);
      await run(id, MKDIR_SCRIPT, [dir], { op: 'mkdir', path: dir });
    },

    async remove(id, path, removeOptions) {
      const target = normalizeSandboxPath(path);
      const recursive = removeOptions?.recursive === true ? 'recursive' : '';
      const context = { op: 'remove', path: target };
      await run(id, REMOVE_SCRIPT, [target, recursive], context, { timeoutMs: REMOVE_TIMEOUT_MS });
    },

    async move(id, from, to) {
      const source = normalizeSandboxPath(from, 'from');
      const target = normalizeSandboxPath(to, 'to');
      await run(id, MOVE_SCRIPT, [source, target], { op: 'move', from: source, to: target });
    },

    async tarOut(id, path, tarOptions) {
      const dir = normalizeSandboxPath(path);
      const args = [dir, tarOptions?.gzip === true ? 'gzip' : ''];
      return openStream(exec, id, user, TAR_OUT_SCRIPT, args, { op: 'tarOut', path: dir });
    },

    async tarIn(id, path, data: Readable) {
      data.pause();
      data.on('error', () => {}); // an early error is still seen by the pipeline
      const dir = normalizeSandboxPath(path);
      const context = { op: 'tarIn', path: dir };
      const inspector = new ArchiveInspector();
      // The archive lands in a temp file first and is checked as it streams past; tar runs only
      // once every header was accepted, so a refused archive writes nothing.
      const { tempPath } = await upload(exec, id, user, data, {
        dir,
        prefix: '.corral-tarin-',
        notDirectory: '',
        inspect: (chunk) => inspector.write(chunk),
        finish: () => inspector.end(),
        context,
      });
      // Directories on the members' way that already exist in the sandbox must not be symlinks
      // leading out of `dir` (tar follows those): the script checks them before extracting.
      const prefixes = Buffer.from([...inspector.guard.prefixes].map((p) => `${p}\0`).join(''));
      const args = [tempPath, dir, inspector.gzip === true ? 'gzip' : ''];
      await run(id, TAR_IN_SCRIPT, args, context, { timeoutMs: 0, stdin: prefixes }).catch((err: unknown) => {
        if (!isRuntimeError(err, 'INVALID_ARGUMENT') || !err.message.startsWith('archive refused: '))
          throw err;
        const entry = err.message.replace(/^archive refused: /, '').replace(/ leads out of the target$/, '');
        throw new RuntimeError('INVALID_ARGUMENT', err.message, {
          ...err.details,
          entry,
          reason: 'symlink-escape',
        });
      });
    },
  };
}

const FIND_TYPES: Record<string, FileType> = { f: 'file', d: 'directory', l: 'symlink' };

/** Records of `find -printf` with FIND_FORMAT; `path` is filled in by the caller. */
function parseFind(out: Buffer): FileInfo[] {
  const fields: string[] = [];
  let start = 0;
  for (let i = out.indexOf(0); i !== -1; i = out.indexOf(0, start)) {
    fields.push(out.subarray(start, i).toString('utf8'));
    start = i + 1;
  }
  const entries: FileInfo[] = [];
  for (let i = 0; i + FIND_FIELDS <= fields.length; i += FIND_FIELDS) {
    const [type, size, mode, mtime, name] = fields.slice(i, i + FIND_FIELDS) as [
      string,
      string,
      string,
      string,
      string,
    ];
    entries.push({
      name,
      path: '',
      type: FIND_TYPES[type] ?? 'other',
      size: Number(size),
      mode: Number.parseInt(mode, 8),
      mtime: new Date(Math.round(Number(mtime) * 1000)).toISOString(),
    });
  }
  return entries;
}

function checkRange(range: { start: number; end?: number } | undefined): {
  start: number;
  count: number | null;
} {
  if (range === undefined) return { start: 0, count: null };
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RuntimeError('INVALID_ARGUMENT', 'range.start must be a non-negative integer', { range });
  }
  if (end === undefined) return { start, count: null };
  if (!Number.isSafeInteger(end) || end < start) {
    throw new RuntimeError('INVALID_ARGUMENT', 'range.end must be an integer ≥ range.start', { range });
  }
  return { start, count: end - start + 1 };
}

function checkMode(mode: number | undefined): number | undefined {
  if (mode === undefined) return undefined;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RuntimeError('INVALID_ARGUMENT', 'mode must be an integer between 0 and 0o7777', { mode });
  }
  return mode;
}
