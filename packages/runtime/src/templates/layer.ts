import { execFile } from 'node:child_process';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rm,
  symlink,
} from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { RuntimeError } from '../errors.js';
import { capabilityText } from './capabilities.js';
import type { TarEntry } from './tar.js';

const execFileAsync = promisify(execFile);
const MAX_SYMLINK_HOPS = 40;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** The one extended attribute restored from layers. */
export const CAPABILITY_XATTR = 'security.capability';

/**
 * An entry name as path components inside the tree; TEMPLATE_INVALID for an absolute path or
 * one that climbs out with `..`. The tree's root itself is [].
 */
export function entryComponents(name: string): string[] {
  if (name.startsWith('/')) throw invalidEntry(name, 'absolute path');
  const normalized = path.posix.normalize(name.replace(/^(\.\/)+/, ''));
  if (normalized === '..' || normalized.startsWith('../')) throw invalidEntry(name, 'path escapes the tree');
  return normalized.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * The host path of `components` inside `root`, resolving symlinks as if `root` were `/`
 * (absolute targets restart at `root`, `..` stops at it), so nothing resolves outside `root`.
 * The last component is followed only when `followLast` is set.
 */
export async function resolveInRoot(
  root: string,
  components: string[],
  followLast: boolean,
): Promise<string> {
  let resolved: string[] = [];
  let queue = [...components];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    if (queue.length > 0 || followLast) {
      const info = await lstat(candidate).catch(() => undefined);
      if (info?.isSymbolicLink()) {
        hops += 1;
        if (hops > MAX_SYMLINK_HOPS)
          throw invalidEntry(components.join('/'), 'too many levels of symbolic links');
        const target = await readlink(candidate);
        if (target.startsWith('/')) resolved = [];
        queue = [...target.split('/'), ...queue];
        continue;
      }
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** Whiteouts found in a layer: entries to delete, and directories to empty, before applying it. */
export interface Whiteouts {
  deleted: string[][];
  opaque: string[][];
}

/** Classify an entry: a whiteout (recorded in `whiteouts`) or ordinary content. */
export function collectWhiteout(entry: TarEntry, whiteouts: Whiteouts): void {
  const parts = entryComponents(entry.name);
  const base = parts.at(-1);
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return;
  if (base === OPAQUE_MARKER) whiteouts.opaque.push(parts.slice(0, -1));
  else {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..') throw invalidEntry(entry.name, 'bad whiteout');
    whiteouts.deleted.push([...parts.slice(0, -1), target]);
  }
}

/** Apply a layer's whiteouts to the tree below it (OCI image spec, "Whiteouts"). */
export async function applyWhiteouts(root: string, whiteouts: Whiteouts): Promise<void> {
  for (const parts of whiteouts.deleted) {
    const parent = await resolveInRoot(root, parts.slice(0, -1), true);
    await rm(path.join(parent, parts.at(-1)!), { recursive: true, force: true });
  }
  for (const parts of whiteouts.opaque) {
    const dir = await resolveInRoot(root, parts, true);
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    for (const child of await readdir(dir)) await rm(path.join(dir, child), { recursive: true, force: true });
  }
}

/** Directories whose times are set once the layer is done (writing children changes them). */
export type DirectoryTimes = Array<{ hostPath: string; mtimeSeconds: number }>;

/**
 * Write one entry into the tree with its original owner and mode (the tree is shifted later).
 * Whiteout entries are skipped: they were applied before the layer.
 */
export async function writeEntry(root: string, entry: TarEntry, dirTimes: DirectoryTimes): Promise<void> {
  const parts = entryComponents(entry.name);
  const base = parts.at(-1);
  if (base === undefined) return; // the root itself keeps its own metadata
  if (base.startsWith(WHITEOUT_PREFIX)) return;
  const parent = await resolveInRoot(root, parts.slice(0, -1), true);
  await mkdir(parent, { recursive: true });
  const hostPath = path.join(parent, base);
  const existing = await lstat(hostPath).catch(() => undefined);
  // As Docker does: an existing entry is replaced, except a directory met by a directory.
  if (existing && !(existing.isDirectory() && entry.type === 'directory')) {
    await rm(hostPath, { recursive: true, force: true });
  }
  switch (entry.type) {
    case 'directory':
      if (!existing?.isDirectory()) await mkdir(hostPath);
      dirTimes.push({ hostPath, mtimeSeconds: entry.mtimeSeconds });
      break;
    case 'file': {
      const handle = await open(hostPath, 'wx', 0o600);
      try {
        for await (const chunk of entry.body()) await handle.write(chunk);
      } finally {
        await handle.close();
      }
      break;
    }
    case 'symlink':
      await symlink(entry.linkName, hostPath);
      break;
    case 'hardlink': {
      const target = await resolveInRoot(root, entryComponents(entry.linkName), false);
      const targetInfo = await lstat(target).catch(() => undefined);
      if (!targetInfo || targetInfo.isDirectory()) throw invalidEntry(entry.name, 'bad hard link target');
      await link(target, hostPath);
      return; // shares the target's inode: owner, mode and times are the target's
    }
    case 'char':
    case 'block':
    case 'fifo': {
      const kind = entry.type === 'char' ? 'c' : entry.type === 'block' ? 'b' : 'p';
      const numbers = kind === 'p' ? [] : [String(entry.devMajor), String(entry.devMinor)];
      await execFileAsync('mknod', [hostPath, kind, ...numbers]);
      break;
    }
  }
  await lchown(hostPath, entry.uid, entry.gid);
  // After chown, which clears setuid/setgid and capabilities.
  if (entry.type !== 'symlink') await chmod(hostPath, entry.mode);
  const capability = entry.xattrs[CAPABILITY_XATTR];
  if (entry.type === 'file' && capability !== undefined) {
    // Set as a plain (v2) capability; the uid shift rewrites it as one owned by the sandbox's root.
    const text = capabilityText(Buffer.from(capability, 'latin1'));
    if (text !== undefined) await execFileAsync('setcap', [text, hostPath]);
  }
  if (entry.type !== 'directory') await lutimes(hostPath, entry.mtimeSeconds, entry.mtimeSeconds);
}

/** Set directory times last, deepest first. */
export async function applyDirectoryTimes(dirTimes: DirectoryTimes): Promise<void> {
  for (const { hostPath, mtimeSeconds } of [...dirTimes].reverse()) {
    await lutimes(hostPath, mtimeSeconds, mtimeSeconds).catch(() => undefined);
  }
}

function invalidEntry(name: string, reason: string): RuntimeError {
  return new RuntimeError('TEMPLATE_INVALID', `image layer entry ${JSON.stringify(name)}: ${reason}`, {
    entry: name,
    reason,
  });
}
