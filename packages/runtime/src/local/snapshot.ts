import { rmSync } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RuntimeError } from '../errors.js';
import { checkListing } from './snapshot-listing.js';
import { compressorCommand, hasherCommand, run, runPipeline } from './snapshot-run.js';

const XATTR_ARGS = [
  '--xattrs',
  '--xattrs-include=trusted.*',
  '--xattrs-include=user.*',
  '--xattrs-include=security.*',
];
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** A validated archive not extracted within this long is dropped (a restore that failed between). */
const VALIDATED_TTL_MS = 5 * 60_000;

/**
 * Archive the upper layer (what the sandbox wrote, overlay whiteouts and xattrs included) as a
 * zstd (or gzip) tar at `destPath`, written atomically; returns its size and sha256.
 */
export async function archiveUpper(
  upperDir: string,
  destPath: string,
): Promise<{ sizeBytes: number; sha256: string }> {
  const tmp = `${destPath}.${process.pid}.tmp`;
  // tar → compressor → file through an OS pipe, then hash the file (from the page cache): Node
  // only reads the digest. Measured faster than hashing inside the pipeline through `tee`.
  const tar = `tar --numeric-owner ${XATTR_ARGS.join(' ')} -C "$1" -cf - .`;
  const script = `umask 077; ${tar} | ${compressorCommand()} > "$2" && ${hasherCommand()} "$2"`;
  try {
    const digest = await runPipeline(script, [upperDir, tmp]);
    const sha256 = digest.slice(0, 64);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`unexpected digest output: ${digest.slice(0, 100)}`);
    const { size } = await stat(tmp);
    await rename(tmp, destPath);
    return { sizeBytes: size, sha256 };
  } catch (err) {
    await rm(tmp, { force: true });
    throw new RuntimeError('INTERNAL', `snapshot failed: ${(err as Error).message}`, {}, { cause: err });
  }
}

async function decompressorFor(path: string): Promise<string> {
  const handle = await open(path, 'r').catch((err) => {
    throw new RuntimeError('SNAPSHOT_INVALID', `cannot read snapshot ${path}: ${(err as Error).message}`);
  });
  const head = Buffer.alloc(4);
  await handle.read(head, 0, 4, 0);
  await handle.close();
  if (head.equals(ZSTD_MAGIC)) return 'zstd';
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  throw new RuntimeError('SNAPSHOT_INVALID', 'snapshot is neither zstd nor gzip compressed');
}

/** The archive decompressed once into a private temp dir, its listing checked. */
interface ValidatedTar {
  /** dev:ino:size:mtime of the compressed archive it came from. */
  stamp: string;
  dir: string;
  tarPath: string;
  timer: NodeJS.Timeout;
}

// Archives validated and not yet extracted, by source path: restore validates before it halts
// the sandbox and extracts after, and extraction must unpack exactly the bytes that were checked.
const validated = new Map<string, ValidatedTar[]>();
let exitHookInstalled = false;

async function stampOf(path: string): Promise<string> {
  const s = await stat(path).catch((err) => {
    throw new RuntimeError('SNAPSHOT_INVALID', `cannot read snapshot ${path}: ${(err as Error).message}`);
  });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Next to the archive (the disk sized for snapshots), else the system temp dir. */
async function privateTempDir(srcPath: string): Promise<string> {
  try {
    return await mkdtemp(join(dirname(srcPath), '.corral-restore-'));
  } catch {
    return mkdtemp(join(tmpdir(), 'corral-restore-'));
  }
}

/** Decompress `srcPath` once to a plain tar and check its listing; the caller owns the result. */
async function decompressAndCheck(srcPath: string): Promise<Omit<ValidatedTar, 'timer'>> {
  const stamp = await stampOf(srcPath);
  const decompressor = await decompressorFor(srcPath);
  const dir = await privateTempDir(srcPath);
  const tarPath = join(dir, 'upper.tar');
  try {
    const out = await open(tarPath, 'wx', 0o600);
    try {
      await run(decompressor, ['-d', '-c', ...(decompressor === 'zstd' ? ['-q'] : []), srcPath], out.fd);
    } finally {
      await out.close();
    }
    // On a regular file tar seeks over the contents: listing costs the headers only.
    checkListing(await run('tar', ['--numeric-owner', '-tvf', tarPath]));
    return { stamp, dir, tarPath };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError('SNAPSHOT_INVALID', `snapshot archive is unreadable: ${(err as Error).message}`);
  }
}

function dropValidated(srcPath: string, entry: ValidatedTar): void {
  const list = validated.get(srcPath) ?? [];
  const i = list.indexOf(entry);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) validated.delete(srcPath);
  clearTimeout(entry.timer);
}

/**
 * Reject archives that could write outside the upper dir or smuggle host-owned or device files
 * (see `checkListing`). The decompressed tar is kept for a following `extractArchive` of the
 * same, unchanged file, so a restore decompresses once.
 */
export async function validateArchive(srcPath: string): Promise<void> {
  const checked = await decompressAndCheck(srcPath);
  const entry: ValidatedTar = {
    ...checked,
    timer: setTimeout(() => {
      dropValidated(srcPath, entry);
      void rm(entry.dir, { recursive: true, force: true });
    }, VALIDATED_TTL_MS).unref(),
  };
  validated.set(srcPath, [...(validated.get(srcPath) ?? []), entry]);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const list of validated.values()) {
        for (const e of list) rmSync(e.dir, { recursive: true, force: true });
      }
    });
  }
}

/**
 * Unpack an archive into an empty upper dir, keeping owners, modes and xattrs. Uses the tar
 * `validateArchive` left when the file is unchanged since; otherwise validates it first.
 */
export async function extractArchive(srcPath: string, upperDir: string): Promise<void> {
  const stamp = await stampOf(srcPath);
  const cached = validated.get(srcPath)?.find((e) => e.stamp === stamp);
  if (cached) dropValidated(srcPath, cached);
  const checked = cached ?? (await decompressAndCheck(srcPath));
  try {
    await run('tar', ['--numeric-owner', '-p', ...XATTR_ARGS, '-C', upperDir, '-xf', checked.tarPath]);
  } catch (err) {
    throw new RuntimeError('SNAPSHOT_INVALID', `snapshot archive is unreadable: ${(err as Error).message}`);
  } finally {
    await rm(checked.dir, { recursive: true, force: true });
  }
}
