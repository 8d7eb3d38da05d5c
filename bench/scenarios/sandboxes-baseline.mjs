// The raw baseline of the sandboxes scenario: the same runtime the server opens (the server's
// own openSandboxEngine from packages/server/dist, so the same driver, network pool and disk
// pre-warming), driven in-process through @corral/runtime with the spec the server hands it for
// a default POST /v1/sandboxes. The difference to the HTTP figures is the HTTP/API overhead.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createRows, execRows } from './runtime-corral.mjs';
import { row, timed, unavailable } from './runtime-measure.mjs';

async function serverModule(root, path) {
  const file = join(root, 'packages/server/dist', path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'npm run build' first`);
  return import(pathToFileURL(file).href);
}

/** `spec(id)`: what the server's create asks the runtime for when the body is empty. */
async function defaultSpecFactory(root) {
  const { DEFAULT_RESOURCES } = await serverModule(root, 'services/sandboxes/spec.js');
  const { runtimeResources } = await serverModule(root, 'services/sandboxes/service.js');
  const resources = runtimeResources(DEFAULT_RESOURCES);
  return (id) => ({
    id,
    template: 'base',
    resources: { ...resources },
    env: {},
    network: { mode: 'internet' },
    metadata: {},
  });
}

/**
 * Baseline rows: create → first exec, exec round trip, and a file write and read of the payload
 * through `runtime.files`, each labelled `runtime in-process`. `net` holds the network names
 * (bridge, subnet, table) and `dataDir` the runtime's state directory.
 */
export async function baselineRows({ root, dataDir, templateDir, net, knobs, payload, log }) {
  const { openSandboxEngine } = await serverModule(root, 'sandbox-runtime.js');
  const spec = await defaultSpecFactory(root);
  const engine = openSandboxEngine({
    isolation: 'local',
    dataDir,
    templateDir,
    networkBridge: net.bridge,
    networkSubnet: net.subnet,
    networkTable: net.table,
  });
  const runtime = engine.runtime;
  const label = 'runtime in-process';
  const idPrefix = `sbxbase-${process.pid}`;
  const rows = [];
  const section = async (name, work) => {
    log(`baseline: ${name}`);
    try {
      rows.push(...(await work()));
    } catch (err) {
      log(`baseline: ${name} failed: ${err.stack ?? err}`);
      rows.push(unavailable(`${label}: ${name}`, err));
    }
  };
  try {
    // The first create pays for the driver's start-up: keep it out of the samples.
    await section('warm-up', async () => {
      await runtime.create(spec(`${idPrefix}-warm`));
      await runtime.destroy(`${idPrefix}-warm`);
      return [];
    });
    const common = { runtime, label, idPrefix, spec, goals: false };
    await section('create → first exec', () => createRows({ ...common, n: knobs.n }));
    await section('exec round trip', async () =>
      (await execRows({ ...common, n: knobs.execN })).map((r) => ({ ...r, goal: '' })),
    );
    await section('file write/read', () => fileRows(runtime, `${idPrefix}-files`, spec, payload, knobs));
  } finally {
    await runtime.close().catch((err) => log(`baseline close: ${err.message}`));
  }
  return rows;
}

/** The payload through runtime.files.write / read, `knobs.fileReps` times each; sha256 checked. */
async function fileRows(runtime, id, spec, payload, knobs) {
  await runtime.create(spec(id));
  try {
    const path = '/home/user/bench.bin';
    const writes = [];
    const reads = [];
    for (let r = 0; r < knobs.fileReps; r++) {
      const [writeMs, written] = await timed(() =>
        runtime.files.write(id, path, Readable.from(slices(payload.data))),
      );
      if (written !== payload.data.length)
        throw new Error(`wrote ${written} of ${payload.data.length} bytes`);
      // Chunks are kept and hashed once the clock has stopped (SHA-256 runs at about 1 GB/s).
      const [readMs, chunks] = await timed(async () => {
        const kept = [];
        for await (const chunk of await runtime.files.read(id, path)) kept.push(chunk);
        return kept;
      });
      const hash = createHash('sha256');
      for (const chunk of chunks) hash.update(chunk);
      if (hash.digest('hex') !== payload.sha256) throw new Error('read back bytes differ from those written');
      writes.push(writeMs);
      reads.push(readMs);
    }
    const note = `n=${knobs.fileReps}; median; sha256 checked`;
    const mbps = (ms) => payload.data.length / 1e6 / (ms / 1000);
    const mib = Math.round(payload.data.length / 2 ** 20);
    return [
      row(`runtime in-process: files.write ${mib} MiB`, mbps(median(writes)), 'MB/s', '', note),
      row(`runtime in-process: files.read ${mib} MiB`, mbps(median(reads)), 'MB/s', '', note),
    ];
  } finally {
    await runtime.destroy(id).catch(() => undefined);
  }
}

/** The payload as 1 MiB slices (what a streaming source hands over). */
export function* slices(data, size = 1 << 20) {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

export function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
