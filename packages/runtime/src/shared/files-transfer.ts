import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isRuntimeError, RuntimeError } from '../errors.js';
import {
  collect,
  collectStderr,
  type ExecFn,
  type ExecUser,
  failureError,
  GO,
  runScript,
  scriptRequest,
} from './files-run.js';
import { DISCARD_SCRIPT, UPLOAD_SCRIPT } from './files-scripts.js';

const MARKER = 0x4b; // 'K', printed by streaming scripts once their checks pass

/**
 * Start a streaming script and resolve with its output once it has printed the marker, so a
 * missing file or a directory is a thrown RuntimeError, not a broken stream. The returned stream
 * ends only once the process exited 0 and errors if it failed; destroying it kills the process.
 */
export async function openStream(
  exec: ExecFn,
  sandboxId: string,
  user: ExecUser,
  script: string,
  args: string[],
  context: Record<string, unknown>,
): Promise<Readable> {
  const proc = await exec(sandboxId, scriptRequest(script, args, user));
  proc.stdin.on('error', () => {});
  const stderr = collectStderr(proc.stderr);
  const marker = readMarker(proc.stdout);
  proc.stdin.end(GO);
  let exited = false;
  const status = proc.wait().finally(() => {
    exited = true;
  });
  status.catch(() => {}); // observed below on every path; never an unhandled rejection
  let marked: boolean;
  try {
    marked = await marker;
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  if (!marked) {
    proc.stdout.resume(); // whatever follows is not ours to deliver; let the process finish
    throw failureError(await status, await stderr, context);
  }
  // A stream of our own: it holds data until the caller reads (the process's stdout may be
  // drained by its driver once the process exits), and it can end with the exit status.
  const output = new PassThrough({ highWaterMark: 1024 * 1024 });
  proc.stdout.pipe(output, { end: false });
  output.once('close', () => {
    if (!exited) proc.kill('SIGKILL');
    // Let go of the exec's stdout too: otherwise a reader gone mid-file can leave the host-side
    // helper blocked writing into a full pipe that nobody drains, and it never exits.
    proc.stdout.destroy();
  });
  status.then(
    async (st) => {
      if (output.destroyed) return;
      if (st.exitCode === 0) output.end();
      else output.destroy(failureError(st, await stderr, context));
    },
    (err: unknown) => output.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  return output;
}

/** Resolve true when the first byte is the marker, false when the stream ends without it. */
function readMarker(stream: Readable): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onReadable = () => {
      const first = stream.read(1) as Buffer | string | null;
      if (first === null) return;
      cleanup();
      resolve(typeof first === 'string' ? first === 'K' : first[0] === MARKER);
    };
    const onEnd = () => {
      cleanup();
      resolve(false);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    if (stream.readableEnded) {
      resolve(false);
      return;
    }
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

export interface UploadOptions {
  /** Directory for the temp file (created with parents). */
  dir: string;
  /** Temp file name prefix. */
  prefix: string;
  /** A path that must not be a directory, checked before any byte is taken; '' for none. */
  notDirectory: string;
  /** Sees every chunk before it is sent; throwing (or rejecting) aborts the upload. */
  inspect?: (chunk: Buffer) => void | Promise<void>;
  /** Runs after the last chunk; throwing aborts the upload. */
  finish?: () => void | Promise<void>;
  /** Chunks already taken from `data`, sent (and counted) first. */
  initial?: Buffer[];
  context: Record<string, unknown>;
}

/**
 * Take chunks from `data` until it ends or holds more than `limitBytes`; then leave it paused
 * (the rest still readable). `ended` tells which.
 */
export function readUpTo(data: Readable, limitBytes: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      data.off('data', onData);
      data.off('end', onEnd);
      data.off('error', onError);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chunks.push(buf);
      total += buf.length;
      if (total > limitBytes) {
        data.pause();
        cleanup();
        resolve({ chunks, ended: false });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve({ chunks, ended: true });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    if (data.readableEnded) {
      resolve({ chunks, ended: true });
      return;
    }
    if (data.destroyed) {
      reject(data.errored ?? new Error('the data stream was destroyed'));
      return;
    }
    data.on('data', onData);
    data.on('end', onEnd);
    data.on('error', onError);
    data.resume();
  });
}

/**
 * Stream `data` into a new temp file inside the sandbox; resolves with its path and size. On
 * any failure (the source errors, `inspect` refuses, the sandbox side fails) the temp file is
 * removed and nothing else was touched.
 */
export async function upload(
  exec: ExecFn,
  sandboxId: string,
  user: ExecUser,
  data: Readable,
  options: UploadOptions,
): Promise<{ tempPath: string; bytes: number }> {
  const { dir, prefix, notDirectory, inspect, finish, initial = [], context } = options;
  const proc = await exec(sandboxId, scriptRequest(UPLOAD_SCRIPT, [dir, prefix, notDirectory], user));
  const stderr = collectStderr(proc.stderr);
  const stdout = collect(proc.stdout, 64 * 1024).catch(() => Buffer.alloc(0));
  const status = proc.wait();
  let bytes = 0;
  const feed = pipeline(
    data,
    async function* (source: AsyncIterable<Buffer | string>) {
      yield GO;
      const take = async (chunk: Buffer | string) => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        bytes += buf.length;
        if (inspect) await inspect(buf);
        return buf;
      };
      for (const chunk of initial) yield await take(chunk);
      for await (const chunk of source) yield await take(chunk);
      if (finish) await finish();
    },
    proc.stdin,
  ).then(
    () => null,
    (err: unknown) => err ?? new Error('upload failed'),
  );
  // If the sandbox side gives up first (a directory in the way, no permission), stop feeding it.
  let fed = false;
  status.then(
    (st) => {
      if (!fed && st.exitCode !== 0) proc.stdin.destroy(new Error('upload process exited'));
    },
    () => {},
  );
  // On a feed error pipeline has closed stdin: the script sees EOF, finishes its temp file and
  // exits, and the temp file is discarded below by name. No signal, so no race with mktemp.
  const feedError = await feed;
  fed = true;
  const [st, out, err] = await Promise.all([status, stdout, stderr]);
  const nul = out.indexOf(0);
  const tempPath = nul > 0 ? out.subarray(0, nul).toString('utf8') : null;
  const discard = async () => {
    if (tempPath === null) return;
    await runScript(exec, sandboxId, user, DISCARD_SCRIPT, [tempPath]).catch(() => {});
  };

  if (feedError !== null) {
    await discard();
    if (isRuntimeError(feedError)) throw feedError;
    // We never signal the script: when the caller's stream fails it sees EOF and exits 0, so a
    // non-zero exit means the sandbox side gave up on its own (and stdin broke because of it).
    if (st.exitCode !== 0) throw failureError(st, err, context);
    throw feedError;
  }
  if (st.exitCode !== 0 || tempPath === null) {
    await discard();
    throw failureError(st, err, context);
  }
  const written = Number(out.subarray(nul + 1).toString('latin1'));
  if (written !== bytes) {
    await discard();
    throw new RuntimeError('INTERNAL', `wrote ${written} of ${bytes} bytes`, { ...context, bytes, written });
  }
  return { tempPath, bytes };
}
