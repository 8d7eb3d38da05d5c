import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RuntimeError } from '../errors.js';

const execFileAsync = promisify(execFile);

/** packages/runtime/native (the C helper's sources), from both src/local and dist/local. */
export const HELPER_SOURCE_DIR = fileURLToPath(new URL('../../native/', import.meta.url));

const building = new Map<string, Promise<string>>();

/**
 * Path of the compiled corral-nsenter helper under `<stateDir>/bin`, compiling it with `cc -O2`
 * on first use. Cached by a hash of the sources, so an edited helper is rebuilt once.
 */
export function ensureHelper(stateDir: string): Promise<string> {
  let pending = building.get(stateDir);
  if (!pending) {
    pending = buildHelper(stateDir);
    building.set(stateDir, pending);
    pending.catch(() => building.delete(stateDir));
  }
  return pending;
}

async function buildHelper(stateDir: string): Promise<string> {
  const files = (await readdir(HELPER_SOURCE_DIR)).filter((f) => /\.[ch]$/.test(f)).sort();
  const hash = createHash('sha256');
  for (const file of files)
    hash
      .update(file)
      .update('\0')
      .update(await readFile(join(HELPER_SOURCE_DIR, file)));
  const binDir = join(stateDir, 'bin');
  const target = join(binDir, `corral-nsenter-${hash.digest('hex').slice(0, 16)}`);
  try {
    await access(target);
    return target;
  } catch {
    // not built yet
  }
  await mkdir(binDir, { recursive: true, mode: 0o700 });
  const tmp = `${target}.${process.pid}.tmp`;
  const sources = files.filter((f) => f.endsWith('.c')).map((f) => join(HELPER_SOURCE_DIR, f));
  // Static linking saves the dynamic loader's work on every exec (~0.3 ms); fall back when libc.a is absent.
  const attempts = [
    ['-O2', '-static', '-o', tmp, ...sources],
    ['-O2', '-o', tmp, ...sources],
  ];
  let lastError: unknown;
  for (const args of attempts) {
    try {
      await execFileAsync('cc', args);
      await rename(tmp, target);
      return target;
    } catch (err) {
      lastError = err;
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeError(
          'PREREQUISITE_MISSING',
          'The local runtime compiles a small C helper and needs a C compiler: apt-get install gcc',
          { missing: 'cc' },
        );
      }
    }
  }
  throw new RuntimeError(
    'INTERNAL',
    `Compiling the helper in ${HELPER_SOURCE_DIR} failed: ${String(lastError)}`,
    {},
    {
      cause: lastError,
    },
  );
}
