import { Readable } from 'node:stream';
import type { ExitStatus, Runtime } from '../../src/interface.js';

export interface ShellResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Run a bash script inside a sandbox through the runtime's own exec and collect its output. */
export async function shell(
  runtime: Runtime,
  sandboxId: string,
  script: string,
  options: { user?: 'user' | 'root'; args?: string[] } = {},
): Promise<ShellResult> {
  // The script waits for one byte, sent once both outputs are being read: a process that is
  // done before anyone listens must not lose its output.
  const proc = await runtime.exec(sandboxId, {
    command: '/bin/bash',
    args: ['-c', `IFS= read -r -n 1 -d '' _\n${script}`, 'conformance', ...(options.args ?? [])],
    user: options.user ?? 'user',
    cwd: '/',
  });
  const outputs = Promise.all([readAll(proc.stdout), readAll(proc.stderr)]);
  proc.stdin.end('G');
  const [[stdout, stderr], status] = await Promise.all([outputs, proc.wait()]);
  return { ...status, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
}

/** Like shell, but throws with stderr unless the script exits 0; resolves with stdout. */
export async function shellOk(
  runtime: Runtime,
  sandboxId: string,
  script: string,
  options: { user?: 'user' | 'root'; args?: string[] } = {},
): Promise<string> {
  const result = await shell(runtime, sandboxId, script, options);
  if (result.exitCode !== 0) {
    throw new Error(`script failed (${result.exitCode}): ${result.stderr.trim()}\n${script}`);
  }
  return result.stdout;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** A Readable of `total` deterministic pseudo-random bytes, produced lazily in `chunkBytes` pieces. */
export function patternStream(total: number, seed = 1, chunkBytes = 1024 * 1024): Readable {
  let produced = 0;
  let state = seed >>> 0 || 1;
  return new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(chunkBytes, total - produced);
      const buf = Buffer.allocUnsafe(size);
      for (let i = 0; i + 4 <= size; i += 4) {
        // xorshift32: cheap, deterministic, not compressible
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        buf.writeUInt32LE(state >>> 0, i);
      }
      for (let i = size - (size % 4); i < size; i++) buf[i] = i & 0xff;
      produced += size;
      this.push(buf);
    },
  });
}

/** Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
