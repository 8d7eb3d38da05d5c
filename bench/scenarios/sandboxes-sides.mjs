// The two "sides" the sandboxes scenario measures with the same code: the HTTP API of a running
// server, and the same runtime driven in-process (the raw baseline). A side is
// `{ label, create() → id, exec(id, command, args) → { stdout, durationMs? }, destroy(id),
//    upload(id, path, payload) → bytes, download(id, path) → { bytes, chunks }, close() }`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createClient } from '../lib/http-client.mjs';
import { execOnce } from './runtime-corral.mjs';

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
      return sandbox.id;
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
      return res.json().size;
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

async function serverModule(root, path) {
  const file = join(root, 'packages/server/dist', path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'npm run build' first`);
  return import(pathToFileURL(file).href);
}

/**
 * Opens the runtime exactly as the server does (its own openSandboxEngine: same driver, network
 * slot pool, disk pre-warming) on `dataDir` and network `net` ({ bridge, subnet, table }), and
 * `spec(id)`: what the server's create hands the runtime for an empty POST /v1/sandboxes body.
 */
export async function openServerRuntime({ root, dataDir, templateDir, net }) {
  const { openSandboxEngine } = await serverModule(root, 'sandbox-runtime.js');
  const { DEFAULT_RESOURCES } = await serverModule(root, 'services/sandboxes/spec.js');
  const { runtimeResources } = await serverModule(root, 'services/sandboxes/service.js');
  const { runtime } = openSandboxEngine({
    isolation: 'local',
    dataDir,
    templateDir,
    networkBridge: net.bridge,
    networkSubnet: net.subnet,
    networkTable: net.table,
  });
  const resources = runtimeResources(DEFAULT_RESOURCES);
  const spec = (id) => ({
    id,
    template: 'base',
    resources: { ...resources },
    env: {},
    network: { mode: 'internet' },
    metadata: {},
  });
  return { runtime, spec };
}

/** The in-process side over `runtime`; sandbox ids are `<prefix>-<n>`. `close()` leaves the runtime open. */
export function runtimeSide(runtime, spec, prefix) {
  let next = 0;
  return {
    label: 'runtime in-process',
    async create() {
      const id = `${prefix}-${next++}`;
      await runtime.create(spec(id));
      return id;
    },
    exec: (id, command, args = []) => execOnce(runtime, id, command, args),
    destroy: (id) => runtime.destroy(id),
    upload: (id, path, payload) => runtime.files.write(id, path, Readable.from(slices(payload.data))),
    download: async (id, path) => collectStream(await runtime.files.read(id, path)),
    close() {},
  };
}

/** The payload as 1 MiB slices (what a streaming source hands over). */
function* slices(data, size = 1 << 20) {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
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
