import { RuntimeError } from '../errors.js';
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from '../shared/ids.js';

const LISTING = /^(\S)\S{9}\s+(\d+)\/(\d+)\s+(\S+)\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? (.*)$/;

/**
 * Check a `tar --numeric-owner -tv` listing; throws SNAPSHOT_INVALID on the first entry that
 * could write outside the upper dir or smuggle host-owned or device files: every entry must be
 * relative without `..`, not below a symlink entry, owned by a sandbox id, and a regular file,
 * directory, symlink, hard link or overlay whiteout (char 0,0).
 */
export function checkListing(listing: string): void {
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
