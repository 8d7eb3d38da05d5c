// The in-process baseline of the interactive scenario, in a process of its own (as the server
// is): it opens the runtime exactly as the server does (its own network), makes one sandbox
// (nodejs template) running the same HTTP app as the server side's, and answers over IPC:
//   ptyEchoOpen, ptyEchoBlock {n, warmup} → {samples}, ptyEchoClose: one-byte echo through
//                                runtime.pty (bash → raw cat), in blocks
//   ptyFirstOutput {n}         → {samples}: runtime.pty('/bin/bash -l') → its first output byte
//   forward                    → {port}: a loopback TCP port whose connections are piped to
//                                the app through runtime.connect (the "direct" HTTP path)
//   shutdown                   → destroys its sandbox, closes the runtime, exits.
// Started by bench/scenarios/interactive.mjs with `fork`. Messages: { seq, op, args } in,
// { seq, ok, result | error } out.
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { execOnce } from '../scenarios/runtime-corral.mjs';
import { APP_PATH, APP_PORT, APP_SOURCE, APP_START, rawCat } from './interactive-echo.mjs';
import { openServerRuntime } from './server-runtime.mjs';

/** The pty the server's terminal opens (services/terminals/manager.ts): a login bash as `user`. */
const SHELL = {
  command: '/bin/bash',
  args: ['-l'],
  env: { TERM: 'xterm-256color' },
  cols: 80,
  rows: 24,
  user: 'user',
};

async function main() {
  const options = JSON.parse(process.argv[2]);
  const { runtime, spec } = await openServerRuntime(options);
  const id = `${options.prefix}-app`;
  await runtime.create({ ...spec(id), template: 'nodejs' });
  await runtime.files.write(id, APP_PATH, Readable.from([Buffer.from(APP_SOURCE)]));
  await execOnce(runtime, id, 'bash', ['-c', APP_START]);
  let forwarder = null;
  /** The echo pty and its raw-cat session, between ptyEchoOpen and ptyEchoClose. */
  let echo = null;

  const ops = {
    async ptyEchoOpen() {
      echo = { pty: await runtime.pty(id, SHELL) };
      const { pty } = echo;
      echo.session = await rawCat({
        send: (b) => pty.write(b),
        onData: (listener) => pty.output.on('data', listener),
      });
      return {};
    },
    async ptyEchoBlock({ n, warmup }) {
      return { samples: await echo.session.samples(n, warmup) };
    },
    async ptyEchoClose() {
      echo?.pty.kill('SIGKILL');
      await echo?.pty.wait().catch(() => undefined);
      echo = null;
      return {};
    },
    async ptyFirstOutput({ n }) {
      const samples = [];
      for (let i = 0; i < n; i++) {
        const start = performance.now();
        const pty = await runtime.pty(id, SHELL);
        await new Promise((resolve) => pty.output.once('data', resolve));
        samples.push(performance.now() - start);
        pty.output.resume();
        pty.kill('SIGKILL');
        await pty.wait().catch(() => undefined);
      }
      return { samples };
    },
    async forward() {
      if (!forwarder) {
        forwarder = createServer((socket) => {
          socket.setNoDelay(true);
          runtime.connect(id, APP_PORT).then(
            (inner) => {
              socket.pipe(inner).pipe(socket);
              inner.on('error', () => socket.destroy());
              socket.on('error', () => inner.destroy());
              socket.on('close', () => inner.destroy());
            },
            () => socket.destroy(),
          );
        });
        await new Promise((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
      }
      return { port: forwarder.address().port };
    },
    async shutdown() {
      forwarder?.close();
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

if (process.send) {
  main().catch((err) => {
    console.error(err?.stack ?? err);
    process.exit(1);
  });
}
