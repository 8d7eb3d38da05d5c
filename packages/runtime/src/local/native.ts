import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RuntimeError } from '../errors.js';

const execFileAsync = promisify(execFile);

/** packages/runtime/native/corral-nsenter.c, from both src/local and dist/local. */
export const HELPER_SOURCE = fileURLToPath(new URL('../../native/corral-nsenter.c', import.meta.url));

const building = new Map<string, Promise<string>>();

/**
 * Path of the compiled corral-nsenter helper under `<stateDir>/bin`, compiling it with `cc -O2`
 * on first use. Cached by the source's hash, so an edited helper is rebuilt once.
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
  const source = await readFile(HELPER_SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const binDir = join(stateDir, 'bin');
  const target = join(binDir, `corral-nsenter-${hash}`);
  try {
    await access(target);
    return target;
  } catch {
    // not built yet
  }
  await mkdir(binDir, { recursive: true, mode: 0o700 });
  const tmp = `${target}.${process.pid}.tmp`;
  // Static linking saves the dynamic loader's work on every exec (~0.3 ms); fall back when libc.a is absent.
  const attempts = [
    ['-O2', '-static', '-o', tmp, HELPER_SOURCE],
    ['-O2', '-o', tmp, HELPER_SOURCE],
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
    `Compiling ${HELPER_SOURCE} failed: ${String(lastError)}`,
    {},
    { cause: lastError },
  );
}
