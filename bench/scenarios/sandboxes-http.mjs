// The HTTP figures of the sandboxes scenario, each against a running server (child process):
// create → first exec, exec round trip on a keep-alive connection, many creates at once, and a
// 100 MiB file upload and download.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient } from '../lib/http-client.mjs';
import { percentileRows, quantile, row, sample, timed } from './runtime-measure.mjs';
import { median } from './sandboxes-baseline.mjs';

const LABEL = 'HTTP';
/** Every sandbox the scenario creates carries this, so that leftovers can be found. */
export const BENCH_METADATA = { bench: 'sandboxes' };

/** POST /v1/sandboxes with the default spec; resolves with the Sandbox (status running) or throws. */
export async function createSandbox(client, extra = {}) {
  const sandbox = await client.must(201, 'POST', '/v1/sandboxes', {
    json: { metadata: BENCH_METADATA, ...extra },
  });
  if (sandbox.status !== 'running') throw new Error(`created sandbox ${sandbox.id} is ${sandbox.status}`);
  return sandbox;
}

/** POST …/exec of `command`; throws unless it ran and exited 0. Resolves with the exec result. */
export async function execSandbox(client, id, command, args = []) {
  const result = await client.must(200, 'POST', `/v1/sandboxes/${id}/exec`, { json: { command, args } });
  if (result.exit_code !== 0) throw new Error(`${command} exited ${result.exit_code}: ${result.stderr}`);
  return result;
}

export function destroySandbox(client, id) {
  return client.must(204, 'DELETE', `/v1/sandboxes/${id}`);
}

/** POST create → first exec result (`true`), n times, each sandbox deleted afterwards (timed apart). */
export async function createExecRows({ url, key, n }) {
  const client = createClient(url, { key });
  const total = [];
  const creates = [];
  const execs = [];
  const deletes = [];
  try {
    const once = async () => {
      const t0 = performance.now();
      const sandbox = await createSandbox(client);
      const t1 = performance.now();
      try {
        await execSandbox(client, sandbox.id, 'true');
        const t2 = performance.now();
        creates.push(t1 - t0);
        execs.push(t2 - t1);
        total.push(t2 - t0);
      } finally {
        const [ms] = await timed(() => destroySandbox(client, sandbox.id));
        deletes.push(ms);
      }
    };
    await sample(n, once, 2);
    for (const list of [total, creates, execs, deletes]) list.splice(0, list.length - n);
  } finally {
    client.close();
  }
  const note = 'one keep-alive connection; default spec (base, 1 cpu, 512 MiB, 2 GiB disk, internet)';
  return [
    ...percentileRows(
      `${LABEL}: POST create → first exec result`,
      total,
      { p50: '≤ 50', p99: '≤ 150' },
      note,
    ),
    ...percentileRows(`${LABEL}:   of which POST /v1/sandboxes`, creates),
    ...percentileRows(`${LABEL}:   of which first POST …/exec`, execs),
    ...percentileRows(`${LABEL}: DELETE /v1/sandboxes/{id}`, deletes),
  ];
}

/**
 * Exec round trip (`true`) in one running sandbox over one keep-alive connection, n times; and
 * GET /v1/sandboxes/{id} on the same connection (the API's floor: auth, rate limit, one row).
 */
export async function execRoundTripRows({ url, key, n }) {
  const client = createClient(url, { key });
  let id;
  try {
    id = (await createSandbox(client)).id;
    const execSamples = await sample(n, () => execSandbox(client, id, 'true'), 5);
    const getSamples = await sample(n, () => client.must(200, 'GET', `/v1/sandboxes/${id}`), 5);
    return [
      ...percentileRows(
        `${LABEL}: exec round trip (true)`,
        execSamples,
        { p50: '≤ 5' },
        'one keep-alive connection',
      ),
      ...percentileRows(
        `${LABEL}: GET /v1/sandboxes/{id} round trip`,
        getSamples,
        {},
        'same connection; API floor',
      ),
    ];
  } finally {
    if (id) await destroySandbox(client, id).catch(() => undefined);
    client.close();
  }
}

/**
 * `count` POST /v1/sandboxes at once, spread evenly over `workspaces` (each `{ id, keys }`, one
 * client and `count / workspaces` connections each), then every one deleted at once.
 */
export async function concurrentRows({ url, workspaces, count, log }) {
  const per = Math.ceil(count / workspaces.length);
  const clients = workspaces.map((ws) => createClient(url, { key: ws.keys[0], maxSockets: per }));
  const created = [];
  const latencies = [];
  const failures = new Map();
  const fail = (err) => {
    const reason = String(err?.message ?? err)
      .replace(/sbx_\w+/g, 'sbx_…')
      .slice(0, 120);
    failures.set(reason, (failures.get(reason) ?? 0) + 1);
  };
  try {
    const start = performance.now();
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const client = clients[i % clients.length];
        const t0 = performance.now();
        try {
          const sandbox = await createSandbox(client);
          latencies.push(performance.now() - t0);
          created.push({ client, id: sandbox.id });
        } catch (err) {
          fail(err);
        }
      }),
    );
    const wall = performance.now() - start;
    log(`${created.length}/${count} created in ${Math.round(wall)} ms`);
    const deleteFailures = [];
    const [deleteWall] = await timed(() =>
      Promise.all(
        created.map(({ client, id }) => destroySandbox(client, id).catch((err) => deleteFailures.push(err))),
      ),
    );
    const failed = count - created.length;
    const reasons = [...failures].map(([r, c]) => `${c}× ${r}`).join('; ');
    const spread = `${workspaces.length} workspaces × ${per} (team plan: 100 running per workspace), one key and ${per} keep-alive connections each`;
    return [
      row(`${LABEL}: ${count} concurrent POST /v1/sandboxes, wall time`, wall, 'ms', '', spread),
      row(
        `${LABEL}: ${count} concurrent creates, failures`,
        failed,
        'count',
        '0',
        reasons || 'every one 201 running',
      ),
      row(`${LABEL}:   per-create latency p50`, quantile(latencies, 0.5), 'ms', '', `n=${latencies.length}`),
      row(`${LABEL}:   per-create latency p99`, quantile(latencies, 0.99), 'ms', '', `n=${latencies.length}`),
      row(
        `${LABEL}: ${created.length} concurrent DELETEs, wall time`,
        deleteWall,
        'ms',
        '',
        `${deleteFailures.length} failed${deleteFailures[0] ? `: ${String(deleteFailures[0].message).slice(0, 120)}` : ''}`,
      ),
    ];
  } finally {
    for (const c of clients) c.close();
  }
}

/**
 * Upload (PUT …/files/content, raw body from memory) and download (GET, hashed as it streams)
 * of `payload` (`{ data, sha256 }`), `reps` times each on one keep-alive connection; the
 * download's size and sha256 must match, and the upload is checked with sha256sum inside.
 */
export async function fileRows({ url, key, payload, reps }) {
  const client = createClient(url, { key });
  const path = '/home/user/bench.bin';
  const query = `path=${encodeURIComponent(path)}`;
  let id;
  try {
    id = (await createSandbox(client)).id;
    const uploads = [];
    const downloads = [];
    for (let r = 0; r < reps; r++) {
      const [upMs, up] = await timed(() =>
        client.call('PUT', `/v1/sandboxes/${id}/files/content?${query}`, {
          body: payload.data,
          headers: { 'content-type': 'application/octet-stream' },
        }),
      );
      if (up.status < 200 || up.status > 299)
        throw new Error(`PUT files/content → ${up.status}: ${up.text().slice(0, 200)}`);
      const inside = await execSandbox(client, id, 'sha256sum', [path]);
      if (!inside.stdout.startsWith(payload.sha256))
        throw new Error('the uploaded file differs inside the sandbox');
      const [downMs, down] = await timed(() =>
        client.call('GET', `/v1/sandboxes/${id}/files/content?${query}`, { sink: collectStream }),
      );
      if (down.status !== 200) throw new Error(`GET files/content → ${down.status}`);
      const digest = sha256Of(down.body.chunks);
      if (down.body.bytes !== payload.data.length || digest !== payload.sha256) {
        throw new Error(
          `downloaded ${down.body.bytes} bytes, sha256 ${digest.slice(0, 12)}…: not what was uploaded`,
        );
      }
      uploads.push(upMs);
      downloads.push(downMs);
    }
    const mbps = (ms) => payload.data.length / 1e6 / (ms / 1000);
    const each = (list) => list.map((ms) => Math.round(mbps(ms))).join(', ');
    const mib = Math.round(payload.data.length / 2 ** 20);
    return [
      row(
        `${LABEL}: upload ${mib} MiB (PUT …/files/content)`,
        mbps(median(uploads)),
        'MB/s',
        '≥ 500',
        `median of ${reps} (${each(uploads)} MB/s); random bytes from memory; sha256 checked inside`,
      ),
      row(
        `${LABEL}: download ${mib} MiB (GET …/files/content)`,
        mbps(median(downloads)),
        'MB/s',
        '≥ 500',
        `median of ${reps} (${each(downloads)} MB/s); into memory; size and sha256 checked after the clock`,
      ),
    ];
  } finally {
    if (id) await destroySandbox(client, id).catch(() => undefined);
    client.close();
  }
}

/**
 * Consumes a response stream, keeping its chunks (hashing while timing would measure SHA-256:
 * about 1 GB/s on one core); the caller hashes them once the clock has stopped.
 */
async function collectStream(stream) {
  const chunks = [];
  let bytes = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    bytes += chunk.length;
  }
  return { bytes, chunks };
}

function sha256Of(chunks) {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}
