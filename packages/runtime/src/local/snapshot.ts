import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RuntimeError } from '../errors.js';
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from '../shared/ids.js';

const XATTR_ARGS = [
  '--xattrs',
  '--xattrs-include=trusted.*',
  '--xattrs-include=user.*',
  '--xattrs-include=security.*',
];
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

function compressor(): { cmd: string; args: string[] } {
  return existsSync('/usr/bin/zstd')
    ? { cmd: 'zstd', args: ['-q', '-3', '-T0', '-c'] }
    : { cmd: 'gzip', args: ['-c'] };
}

function waitExit(child: ReturnType<typeof spawn>, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited ${code}: ${stderr()}`)),
    );
  });
}

function captureStderr(child: ReturnType<typeof spawn>): () => string {
  let text = '';
  child.stderr?.on('data', (chunk) => {
    if (text.length < 4096) text += String(chunk);
  });
  return () => text.trim();
}

/**
 * Archive the upper layer (what the sandbox wrote, overlay whiteouts and xattrs included) as a
 * zstd (or gzip) tar at `destPath`, written atomically; returns its size and sha256.
 */
export async function archiveUpper(
  upperDir: string,
  destPath: string,
): Promise<{ sizeBytes: number; sha256: string }> {
  const tmp = `${destPath}.${process.pid}.tmp`;
  const tar = spawn('tar', ['--numeric-owner', ...XATTR_ARGS, '-C', upperDir, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { cmd, args } = compressor();
  const zip = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const tarErr = captureStderr(tar);
  const zipErr = captureStderr(zip);
  const hash = createHash('sha256');
  let sizeBytes = 0;
  zip.stdout!.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    sizeBytes += chunk.length;
  });
  try {
    await Promise.all([
      pipeline(tar.stdout!, zip.stdin!),
      pipeline(zip.stdout!, createWriteStream(tmp, { mode: 0o600 })),
      waitExit(tar, 'tar', tarErr),
      waitExit(zip, cmd, zipErr),
    ]);
    await rename(tmp, destPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new RuntimeError('INTERNAL', `snapshot failed: ${(err as Error).message}`, {}, { cause: err });
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}

async function decompressorFor(path: string): Promise<{ cmd: string; args: string[] }> {
  const handle = await open(path, 'r').catch((err) => {
    throw new RuntimeError('SNAPSHOT_INVALID', `cannot read snapshot ${path}: ${(err as Error).message}`);
  });
  const head = Buffer.alloc(4);
  await handle.read(head, 0, 4, 0);
  await handle.close();
  if (head.equals(ZSTD_MAGIC)) return { cmd: 'zstd', args: ['-q', '-d', '-c'] };
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return { cmd: 'gzip', args: ['-d', '-c'] };
  throw new RuntimeError('SNAPSHOT_INVALID', 'snapshot is neither zstd nor gzip compressed');
}

/** Run `tar args` over the decompressed archive; resolves with tar's stdout. */
async function tarOver(srcPath: string, tarArgs: string[]): Promise<string> {
  const { cmd, args } = await decompressorFor(srcPath);
  const unzip = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const tar = spawn('tar', tarArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
  const unzipErr = captureStderr(unzip);
  const tarErr = captureStderr(tar);
  let out = '';
  tar.stdout!.on('data', (chunk) => {
    out += String(chunk);
  });
  try {
    await Promise.all([
      pipeline(createReadStream(srcPath), unzip.stdin!),
      pipeline(unzip.stdout! as Readable, tar.stdin!),
      waitExit(unzip, cmd, unzipErr),
      waitExit(tar, 'tar', tarErr),
    ]);
  } catch (err) {
    throw new RuntimeError('SNAPSHOT_INVALID', `snapshot archive is unreadable: ${(err as Error).message}`);
  }
  return out;
}

const LISTING = /^(\S)\S{9}\s+(\d+)\/(\d+)\s+(\S+)\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? (.*)$/;

/**
 * Reject archives that could write outside the upper dir or smuggle host-owned or device files:
 * every entry must be relative without `..`, not below a symlink entry, owned by a sandbox id,
 * and a regular file, directory, symlink, hard link or overlay whiteout (char 0,0).
 */
export async function validateArchive(srcPath: string): Promise<void> {
  const listing = await tarOver(srcPath, ['--numeric-owner', '-tvf', '-']);
  const symlinks = new Set<string>();
  const bad = (reason: string, line: string) =>
    new RuntimeError('SNAPSHOT_INVALID', `snapshot entry rejected (${reason}): ${line.slice(0, 200)}`);
  const checkPath = (name: string, line: string) => {
    const clean = name.replace(/^\.\//, '');
    if (name.startsWith('/') || clean.split('/').includes('..')) throw bad('path escapes', line);
    const parts = clean.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) throw bad('below a symlink', line);
    }
    return clean;
  };
  for (const line of listing.split('\n')) {
    if (!line) continue;
    const m = LISTING.exec(line);
    if (!m) throw bad('unparsable', line);
    const [, type, uid, gid, size, rest] = m as unknown as [string, string, string, string, string, string];
    // Overlay whiteouts (char 0,0) are created by the mounter, host root.
    const whiteout = type === 'c' && size === '0,0';
    for (const id of [Number(uid), Number(gid)]) {
      const inSandbox = id >= SANDBOX_ID_BASE && id < SANDBOX_ID_BASE + SANDBOX_ID_COUNT;
      if (!inSandbox && !(whiteout && id === 0)) throw bad('owner outside the sandbox', line);
    }
    if (type === 'l') {
      const [name] = rest.split(' -> ');
      symlinks.add(checkPath(name ?? '', line).replace(/\/$/, ''));
    } else if (type === 'h') {
      const [name, target] = rest.split(' link to ');
      checkPath(name ?? '', line);
      checkPath(target ?? '', line);
    } else if (type === '-' || type === 'd') {
      checkPath(rest, line);
    } else if (whiteout) {
      checkPath(rest, line);
    } else {
      throw bad('file type not allowed', line);
    }
  }
}

/** Unpack a validated archive into an empty upper dir, keeping owners, modes and xattrs. */
export async function extractArchive(srcPath: string, upperDir: string): Promise<void> {
  await tarOver(srcPath, ['--numeric-owner', '-p', ...XATTR_ARGS, '-C', upperDir, '-xf', '-']);
}
