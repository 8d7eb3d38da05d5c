// The sandboxes scenario's measurements, written once for any side (sandboxes-sides.mjs). The
// paired ones alternate the HTTP and in-process samples one by one (the order flipping every
// round), so that the machine's load, which drifts, weighs on both sides alike.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '../lib/http-client.mjs';
import { percentileRows, quantile, round, row, timed } from './runtime-measure.mjs';
import { collectStream } from './sandboxes-sides.mjs';

/** Runs `rounds` rounds of `once(side, i)` for each side, alternating; i < 0 are warm-ups. */
async function alternate(sides, rounds, warmup, once) {
  for (let i = -warmup; i < rounds; i++) {
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) await once(side, i);
  }
}

/** [ms, result] of `work()`: the side's own timing (`elapsedMs`) when it reports one, else the clock here. */
async function clocked(work) {
  const [ms, result] = await timed(work);
  return [result?.elapsedMs ?? ms, result];
}

/**
 * `HTTP p50 − in-process p50` as a row: what the API adds on top of the runtime. On a busy
 * machine the spread between the two sides can exceed it (then it comes out negative).
 */
function overheadRow(metric, http, raw) {
  const value = quantile(http, 0.5) - quantile(raw, 0.5);
  const note =
    value < 0
      ? 'p50 difference of the alternating samples; negative: the load’s noise exceeds the overhead'
      : 'p50 difference of the alternating samples';
  return row(metric, value, 'ms', '', note);
}

/**
 * Create → first exec result (`true`), n rounds; each sandbox destroyed afterwards (timed on
 * its own) and a short pause before the next sample, so that the previous sample's background
 * work (network slot and disk pre-warming) is not charged to the other side.
 */
export async function createExecRows({ http, raw, n, settleMs = 150 }) {
  const samples = new Map([http, raw].map((s) => [s, { total: [], create: [], exec: [], destroy: [] }]));
  await alternate([http, raw], n, 2, async (side, i) => {
    const s = samples.get(side);
    const [createMs, { id }] = await clocked(() => side.create());
    try {
      const [execMs] = await clocked(() => side.exec(id, 'true'));
      if (i >= 0) {
        s.create.push(createMs);
        s.exec.push(execMs);
        s.total.push(createMs + execMs);
      }
    } finally {
      const [ms] = await clocked(() => side.destroy(id));
      if (i >= 0) s.destroy.push(ms);
      await sleep(settleMs);
    }
  });
  const h = samples.get(http);
  const r = samples.get(raw);
  const note = 'default spec (base, 1 cpu, 512 MiB, 2 GiB disk, internet); HTTP on one keep-alive connection';
  return [
    ...percentileRows('HTTP: POST create → first exec result', h.total, { p50: '≤ 50', p99: '≤ 150' }, note),
    ...percentileRows(
      'runtime in-process: create() → first exec()',
      r.total,
      {},
      'same runtime set-up and spec',
    ),
    overheadRow('HTTP overhead on create → first exec', h.total, r.total),
    ...percentileRows('HTTP:   of which POST /v1/sandboxes', h.create),
    ...percentileRows('runtime in-process:   of which create()', r.create),
    ...percentileRows('HTTP:   of which first POST …/exec', h.exec),
    ...percentileRows('runtime in-process:   of which first exec()', r.exec),
    ...percentileRows('HTTP: DELETE /v1/sandboxes/{id}', h.destroy),
    ...percentileRows('runtime in-process: destroy()', r.destroy),
  ];
}

/**
 * Exec round trip (`true`) in one running sandbox per side, n rounds alternating; and
 * GET /v1/sandboxes/{id} over the same HTTP connection (the API's floor).
 */
export async function execRows({ http, raw, n }) {
  const ids = new Map();
  try {
    for (const side of [http, raw]) ids.set(side, (await side.create()).id);
    const samples = new Map([
      [http, []],
      [raw, []],
    ]);
    const reported = [];
    await alternate([http, raw], n, 5, async (side, i) => {
      const [ms, result] = await clocked(() => side.exec(ids.get(side), 'true'));
      if (i < 0) return;
      samples.get(side).push(ms);
      if (side === http) reported.push(result.durationMs);
    });
    const gets = [];
    for (let i = -5; i < n; i++) {
      const [ms] = await timed(() => http.get(ids.get(http)));
      if (i >= 0) gets.push(ms);
    }
    const h = samples.get(http);
    const r = samples.get(raw);
    return [
      ...percentileRows('HTTP: exec round trip (true)', h, { p50: '≤ 5' }, 'one keep-alive connection'),
      ...percentileRows('runtime in-process: exec() round trip (true)', r),
      overheadRow('HTTP overhead on exec', h, r),
      row(
        'HTTP overhead on exec, within each request',
        quantile(
          h.map((ms, i) => ms - reported[i]),
          0.5,
        ),
        'ms',
        '',
        'p50 of (round trip − duration_ms) per request: HTTP, auth, rate limit, store, JSON; robust to load',
      ),
      ...percentileRows(
        'HTTP:   of which the command (duration_ms in the answer)',
        reported,
        {},
        'the runtime exec as the server timed it; the rest is HTTP, auth, rate limit, store, audit',
      ),
      ...percentileRows(
        'HTTP: GET /v1/sandboxes/{id} round trip',
        gets,
        {},
        'same connection: the API floor',
      ),
    ];
  } finally {
    for (const [side, id] of ids) await side.destroy(id).catch(() => undefined);
  }
}

/**
 * Writes `payload` ({ data, sha256 }) into a sandbox and reads it back, `reps` rounds per side
 * alternating. Each upload is checked with `sha256sum` inside, each download by size and sha256.
 */
export async function fileRows({ http, raw, payload, reps }) {
  const path = '/home/user/bench.bin';
  const ids = new Map();
  const up = new Map([
    [http, []],
    [raw, []],
  ]);
  const down = new Map([
    [http, []],
    [raw, []],
  ]);
  try {
    for (const side of [http, raw]) ids.set(side, (await side.create()).id);
    await alternate([http, raw], reps, 0, async (side) => {
      const id = ids.get(side);
      const named = (what, work) =>
        work().catch((err) => {
          throw new Error(`${side.label} ${what}: ${err.message}`);
        });
      const [upMs, written] = await clocked(() => named('upload', () => side.upload(id, path, payload)));
      if (written.bytes !== payload.data.length)
        throw new Error(`${side.label}: wrote ${written.bytes} bytes`);
      const inside = await side.exec(id, 'sha256sum', [path]);
      if (!inside.stdout.startsWith(payload.sha256))
        throw new Error(`${side.label}: the file differs inside`);
      const [downMs, got] = await clocked(() => named('download', () => side.download(id, path)));
      const digest = got.sha256 ?? sha256Of(got.chunks);
      if (got.bytes !== payload.data.length || digest !== payload.sha256) {
        throw new Error(`${side.label}: downloaded ${got.bytes} bytes, not what was written`);
      }
      up.get(side).push(upMs);
      down.get(side).push(downMs);
    });
  } finally {
    for (const [side, id] of ids) await side.destroy(id).catch(() => undefined);
  }
  const mib = Math.round(payload.data.length / 2 ** 20);
  const rate = (ms) => payload.data.length / 1e6 / (ms / 1000);
  const figure = (metric, samples, goal, how) => {
    const rates = samples.map(rate);
    const each = rates.map((v) => Math.round(v)).join(', ');
    return row(
      metric,
      quantile(rates, 0.5),
      'MB/s',
      goal,
      `median of ${samples.length} (${each} MB/s); ${how}`,
    );
  };
  return [
    figure(
      `HTTP: upload ${mib} MiB (PUT …/files/content)`,
      up.get(http),
      '≥ 500',
      'random bytes from memory; sha256 checked inside',
    ),
    figure(
      `runtime in-process: files.write ${mib} MiB`,
      up.get(raw),
      '',
      'same bytes, streamed from a file in the page cache; sha256 checked inside',
    ),
    figure(
      `HTTP: download ${mib} MiB (GET …/files/content)`,
      down.get(http),
      '≥ 500',
      'into memory; size and sha256 checked',
    ),
    figure(`runtime in-process: files.read ${mib} MiB`, down.get(raw), '', 'size and sha256 checked'),
  ];
}

function sha256Of(chunks) {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * `count` creates at once, spread round-robin over `sides` (e.g. one HTTP side per workspace),
 * then every created one destroyed at once. `label` prefixes the rows; `note` says how.
 */
export async function concurrentRows({ sides, count, label, note, log }) {
  const created = [];
  const latencies = [];
  const failures = new Map();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const side = sides[i % sides.length];
      try {
        const [ms, { id }] = await clocked(() => side.create());
        created.push({ side, id });
        latencies.push(ms);
      } catch (err) {
        const reason = String(err?.message ?? err)
          .replace(/sbx_\w+/g, 'sbx_…')
          .slice(0, 120);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }),
  );
  const wall = performance.now() - start;
  log(`${label}: ${created.length}/${count} created in ${Math.round(wall)} ms`);
  let deleteFailed = 0;
  const [deleteWall] = await timed(() =>
    Promise.all(created.map(({ side, id }) => side.destroy(id).catch(() => deleteFailed++))),
  );
  const reasons = [...failures].map(([r, c]) => `${c}× ${r}`).join('; ');
  const spread = `p50 ${round(quantile(latencies, 0.5))} ms, p99 ${round(quantile(latencies, 0.99))} ms per create`;
  return [
    row(`${label}: ${count} concurrent creates, wall time`, wall, 'ms', '', `${note}; ${spread}`),
    row(
      `${label}: ${count} concurrent creates, failures`,
      count - created.length,
      'count',
      '0',
      reasons || 'none',
    ),
    row(
      `${label}: ${created.length} concurrent destroys, wall time`,
      deleteWall,
      'ms',
      '',
      `${deleteFailed} failed`,
    ),
  ];
}

/**
 * The ceiling for the file figures: the same upload and download (same client, same payload
 * size) against a bare node:http server in its own process (bench/lib/bulk-server.mjs).
 */
export async function bareTransferRows({ url, payload, reps }) {
  const client = createClient(url);
  const ups = [];
  const downs = [];
  try {
    for (let r = 0; r < reps; r++) {
      const [upMs, up] = await timed(() => client.call('PUT', '/upload', { body: payload.data }));
      if (up.status !== 201 || up.json().size !== payload.data.length)
        throw new Error(`bare PUT → ${up.status}`);
      const [downMs, down] = await timed(() =>
        client.call('GET', `/bytes?n=${payload.data.length}`, { sink: collectStream }),
      );
      if (down.body.bytes !== payload.data.length) throw new Error(`bare GET gave ${down.body.bytes} bytes`);
      ups.push(upMs);
      downs.push(downMs);
    }
  } finally {
    client.close();
  }
  const mib = Math.round(payload.data.length / 2 ** 20);
  const rate = (ms) => payload.data.length / 1e6 / (ms / 1000);
  const figure = (metric, samples) =>
    row(
      metric,
      quantile(samples.map(rate), 0.5),
      'MB/s',
      'ceiling',
      `median of ${samples.length}; same client`,
    );
  return [
    figure(`baseline: bare node:http, upload ${mib} MiB`, ups),
    figure(`baseline: bare node:http, download ${mib} MiB`, downs),
  ];
}
