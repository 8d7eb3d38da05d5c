import { posix } from 'node:path';
import { RuntimeError } from '../errors.js';
import { SANDBOX_USER_HOME } from './ids.js';

/** Longest path accepted, in bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/**
 * Validate a caller's path and make it absolute and normal, without touching any filesystem:
 * relative paths are taken from the user's home. Containment is not decided here — every
 * file operation runs inside the sandbox's root, so the kernel resolves `..` and symlinks there.
 */
export function normalizeSandboxPath(path: unknown, argument = 'path'): string {
  if (typeof path !== 'string') {
    throw new RuntimeError('INVALID_ARGUMENT', `${argument} must be a string`, { argument });
  }
  if (path.length === 0) {
    throw new RuntimeError('INVALID_ARGUMENT', `${argument} must not be empty`, { argument });
  }
  if (path.includes('\0')) {
    throw new RuntimeError('INVALID_ARGUMENT', `${argument} must not contain NUL`, { argument });
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    throw new RuntimeError('INVALID_ARGUMENT', `${argument} is longer than ${MAX_PATH_BYTES} bytes`, {
      argument,
    });
  }
  const absolute = path.startsWith('/') ? path : `${SANDBOX_USER_HOME}/${path}`;
  // posix.normalize keeps `..` at the root as `/`, so `/../etc` is `/etc`: still inside.
  const normal = posix.normalize(absolute);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

/** The last component of a normalised absolute path (`/` for the root). */
export function baseName(path: string): string {
  return path === '/' ? '/' : posix.basename(path);
}

/** The parent directory of a normalised absolute path (`/` for the root). */
export function parentDir(path: string): string {
  return posix.dirname(path);
}
