// The in-process baseline of the sandboxes scenario, in a process of its own (like the server),
// so that both sides get the same share of a busy machine's CPUs: it opens the runtime exactly
// as the server does and runs what the bench asks over the IPC channel, timing each operation
// itself. Started by bench/scenarios/sandboxes-sides.mjs with `fork`.
// Messages in: { seq, op, args }; out: { seq, ok, result | error }, result with `elapsedMs`.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execOnce } from '../scenarios/runtime-corral.mjs';
import { openServerRuntime } from './server-runtime.mjs';

async function main() {
  const options = JSON.parse(process.argv[2]);
  const { runtime, spec } = await openServerRuntime(options);
  // The payload is streamed from its file (page cache), never held here: every exec and create
  // spawns from this process, and a spawn costs more the more memory the process holds (with
  // 100 MiB resident, exec of `true` measured 2.5× slower). The server holds none either.
  if (options.payloadFile) await warmPageCache(options.payloadFile);
  let next = 0;
  const timedOp = async (work) => {
    const start = performance.now();
    const result = await work();
    return { ...result, elapsedMs: performance.now() - start };
  };
  const ops = {
    create: () =>
      timedOp(async () => {
        const id = `${options.prefix}-${next++}`;
        await runtime.create(spec(id));
        return { id };
      }),
    exec: ({ id, command, args }) => timedOp(() => execOnce(runtime, id, command, args)),
    destroy: ({ id }) =>
      timedOp(async () => {
        await runtime.destroy(id);
        return {};
      }),
    upload: ({ id, path }) =>
      timedOp(async () => ({
        bytes: await runtime.files.write(
          id,
          path,
          createReadStream(options.payloadFile, { highWaterMark: 1 << 20 }),
        ),
      })),
    download: async ({ id, path }) => {
      // Chunks are kept while timing and hashed afterwards (SHA-256 runs at about 1 GB/s).
      const chunks = [];
      const result = await timedOp(async () => {
        let bytes = 0;
        for await (const chunk of await runtime.files.read(id, path)) {
          chunks.push(chunk);
          bytes += chunk.length;
        }
        return { bytes };
      });
      const hash = createHash('sha256');
      for (const chunk of chunks) hash.update(chunk);
      chunks.length = 0;
      // Give the 100 MiB back now (see above): the next exec or create must not pay for it.
      globalThis.gc?.();
      return { ...result, sha256: hash.digest('hex') };
    },
    /** Destroys every sandbox left, closes the runtime, and exits. */
    shutdown: async () => {
      for (const sandbox of await runtime.list()) await runtime.destroy(sandbox.id).catch(() => undefined);
      await runtime.close();
      return {};
    },
  };
  process.on('message', async ({ seq, op, args }) => {
    try {
      const result = await ops[op](args ?? {});
      process.send({ seq, ok: true, result });
      if (op === 'shutdown') process.disconnect();
    } catch (err) {
      process.send({ seq, ok: false, error: String(err?.stack ?? err) });
    }
  });
  process.send({ seq: 0, ok: true, result: { ready: true } });
}

/** Reads a file once, so that the timed uploads read it from the page cache, not the disk. */
async function warmPageCache(file) {
  for await (const _chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    // discarded
  }
}

if (process.send) {
  main().catch((err) => {
    console.error(err?.stack ?? err);
    process.exit(1);
  });
}
