// The two "sides" the sandboxes scenario measures with the same code: the HTTP API of a running
// server, and the same runtime driven in-process (the raw baseline). A side is
// `{ label, create() → { id }, exec(id, command, args) → { stdout, durationMs? }, destroy(id),
//    upload(id, path, payload) → { bytes }, download(id, path) → { bytes, chunks | sha256 },
//    close() }`; a result's `elapsedMs`, when present, is the side's own timing of the call.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createClient } from '../lib/http-client.mjs';

/** Every sandbox the scenario creates over HTTP carries this, so that leftovers can be found. */
export const BENCH_METADATA = { bench: 'sandboxes' };

/**
 * The HTTP side: one API key (its own rate-limit budget), `maxSockets` keep-alive connections.
 * Every call checks its status; create also checks that the sandbox answers `running`.
 */
export function httpSide(url, key, { maxSockets = 1 } = {}) {
  const client = createClient(url, { key, maxSockets });
  const content = (id, path) => `/v1/sandboxes/${id}/files/content?path=${encodeURIComponent(path)}`;
  return {
    label: 'HTTP',
    async create() {
      const sandbox = await client.must(201, 'POST', '/v1/sandboxes', { json: { metadata: BENCH_METADATA } });
      if (sandbox.status !== 'running') throw new Error(`created sandbox ${sandbox.id} is ${sandbox.status}`);
      return { id: sandbox.id };
    },
    async exec(id, command, args = []) {
      const result = await client.must(200, 'POST', `/v1/sandboxes/${id}/exec`, { json: { command, args } });
      if (result.exit_code !== 0) throw new Error(`${command} exited ${result.exit_code}: ${result.stderr}`);
      return { stdout: result.stdout, durationMs: result.duration_ms };
    },
    destroy: (id) => client.must(204, 'DELETE', `/v1/sandboxes/${id}`),
    get: (id) => client.must(200, 'GET', `/v1/sandboxes/${id}`),
    async upload(id, path, payload) {
      const res = await client.call('PUT', content(id, path), {
        body: payload.data,
        headers: { 'content-type': 'application/octet-stream' },
      });
      if (res.status !== 201)
        throw new Error(`PUT files/content → ${res.status}: ${res.text().slice(0, 200)}`);
      return { bytes: res.json().size };
    },
    async download(id, path) {
      const res = await client.call('GET', content(id, path), { sink: collectStream });
      if (res.status !== 200)
        throw new Error(`GET files/content → ${res.status}: ${res.text().slice(0, 200)}`);
      return res.body;
    },
    close: () => client.close(),
  };
}

/**
 * The in-process side: the runtime opened as the server opens it, in its own process
 * (bench/lib/runtime-worker.mjs), timing each operation there (`elapsedMs`: no IPC in the
 * figure). `options`: { root, dataDir, templateDir, net, prefix, payloadFile }. Resolves once
 * the worker is ready; `shutdown()` destroys what is left and ends it.
 */
export async function runtimeWorker(options) {
  const child = fork(join(options.root, 'bench/lib/runtime-worker.mjs'), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc'],
  });
  const pending = new Map();
  let seq = 0;
  const failAll = (err) => {
    for (const { reject } of pending.values()) reject(err);
    pending.clear();
  };
  child.on('message', ({ seq: n, ok, result, error }) => {
    const waiter = pending.get(n);
    if (!waiter) return;
    pending.delete(n);
    if (ok) waiter.resolve(result);
    else waiter.reject(new Error(`runtime worker: ${error}`));
  });
  child.on('exit', (code) => failAll(new Error(`runtime worker exited ${code}`)));
  const ready = new Promise((resolve, reject) => pending.set(0, { resolve, reject }));
  const call = (op, args) =>
    new Promise((resolve, reject) => {
      const n = ++seq;
      pending.set(n, { resolve, reject });
      child.send({ seq: n, op, args });
    });
  await ready;
  const side = {
    label: 'runtime in-process',
    create: () => call('create'),
    exec: (id, command, args = []) => call('exec', { id, command, args }),
    destroy: (id) => call('destroy', { id }),
    upload: (id, path) => call('upload', { id, path }),
    download: (id, path) => call('download', { id, path }),
    close() {},
  };
  const shutdown = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await call('shutdown').catch(() => child.kill('SIGKILL'));
    await exited;
  };
  return { side, shutdown };
}

/**
 * Reads a stream to its end keeping the chunks (hashing while timing would measure SHA-256,
 * about 1 GB/s on one core): `{ bytes, chunks }`, hashed by the caller after the clock stops.
 */
export async function collectStream(stream) {
  const chunks = [];
  let bytes = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    bytes += chunk.length;
  }
  return { bytes, chunks };
}
