import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadRequestError, type Sandbox } from '@corral/sdk';
import type { Command } from 'commander';
import { standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { Progress, printJson } from '../output.js';

/** `sbx_…:/path` → the sandbox and path; a local path → null. */
export function remote(spec: string): { id: string; path: string } | null {
  const match = /^([A-Za-z0-9_-]+):(.*)$/.exec(spec);
  if (!match || match[1]?.length === 1) return null; // `C:\…` stays local
  return { id: match[1] as string, path: match[2] || '.' };
}

/** A pass-through stream that counts bytes into `progress`. */
function counter(progress: Progress): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.add(chunk.length);
      done(null, chunk);
    },
  });
}

/** Runs `tar` with `args`, its stdin/stdout as given; rejects when it fails. */
function tar(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<void> } {
  const child = spawn('tar', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CliError(`tar exited with ${code}.`))));
  });
  return { child, done };
}

async function upload(box: Sandbox, local: string, dest: string, quiet: boolean): Promise<number> {
  const info = await stat(local).catch(() => {
    throw new CliError(`No such local file or directory: ${local}`);
  });
  const target = dest.endsWith('/') ? posix.join(dest, basename(local)) : dest;
  if (info.isDirectory()) {
    const progress = new Progress(`${local} → ${box.id}:${target}`, null, quiet);
    const { child, done } = tar(['-czf', '-', '-C', local, '.']);
    child.stdin?.end();
    const body = child.stdout?.pipe(counter(progress)) as Transform;
    await Promise.all([box.files.uploadArchive(target, body), done]);
    progress.done();
    return progress.transferred;
  }
  const progress = new Progress(`${local} → ${box.id}:${target}`, info.size, quiet);
  await box.files.write(target, createReadStream(local).pipe(counter(progress)));
  progress.done();
  return progress.transferred;
}

/** The size of a remote file, for the progress bar (only looked up when a bar may show). */
async function remoteSize(box: Sandbox, path: string, quiet: boolean): Promise<number | null> {
  if (!Progress.wanted(quiet)) return null;
  try {
    const entries = await box.files.list(posix.dirname(path));
    return entries.find((e) => e.name === posix.basename(path) && e.type === 'file')?.size ?? null;
  } catch {
    return null;
  }
}

async function download(box: Sandbox, path: string, local: string, quiet: boolean): Promise<number> {
  const existing = await stat(local).catch(() => null);
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await box.files.readStream(path);
  } catch (err) {
    if (!(err instanceof BadRequestError)) throw err;
    // A directory: its tree as tar.gz, unpacked into `local` (created when missing).
    const target = existing?.isDirectory() && local.endsWith('/') ? join(local, posix.basename(path)) : local;
    await mkdir(target, { recursive: true });
    const progress = new Progress(`${box.id}:${path} → ${target}`, null, quiet);
    const archive = await box.files.downloadArchive(path);
    const { child, done } = tar(['-xzf', '-', '-C', target]);
    await Promise.all([
      pipeline(
        Readable.fromWeb(archive as import('node:stream/web').ReadableStream),
        counter(progress),
        child.stdin as NodeJS.WritableStream,
      ),
      done,
    ]);
    progress.done();
    return progress.transferred;
  }
  const target = existing?.isDirectory() ? join(local, posix.basename(path)) : local;
  const progress = new Progress(`${box.id}:${path} → ${target}`, await remoteSize(box, path, quiet), quiet);
  await pipeline(
    Readable.fromWeb(stream as import('node:stream/web').ReadableStream),
    counter(progress),
    createWriteStream(target),
  );
  progress.done();
  return progress.transferred;
}

/** `corral cp <src> <dst>`: files and directories, to or from a sandbox (`<id>:/path`). */
export function cpCommand(program: Command): void {
  standard(
    program
      .command('cp')
      .description('copy files or directories to or from a sandbox (<id>:/path on the sandbox side)')
      .argument('<src>')
      .argument('<dst>')
      .option('-q, --quiet', 'no progress bar'),
    [
      'corral cp ./data.csv sbx_…:/home/user/data.csv',
      'corral cp ./project sbx_…:/home/user/project    # a directory',
      'corral cp sbx_…:/home/user/out ./out',
    ],
  ).action(async (src: string, dst: string, opts: { quiet?: boolean; json?: boolean }) => {
    const from = remote(src);
    const to = remote(dst);
    if ((from && to) || (!from && !to)) {
      throw new CliError(
        'One side of cp must be a sandbox path and the other a local one.',
        'write the sandbox side as <id>:/path',
      );
    }
    const corral = await client();
    const quiet = opts.quiet || opts.json === true;
    const bytes = to
      ? await upload(await corral.sandboxes.get(to.id), src, to.path, quiet)
      : await download(
          await corral.sandboxes.get((from as { id: string }).id),
          (from as { path: string }).path,
          dst,
          quiet,
        );
    if (opts.json) printJson({ from: src, to: dst, bytes });
  });
}
