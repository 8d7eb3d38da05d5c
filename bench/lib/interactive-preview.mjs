// The preview-proxy rows of the interactive scenario: the sandbox's app through its preview URL
// (Host `3000-<id>.localhost:<port>` on the server's own port) beside the baseline's app through
// a loopback port piped to it by runtime.connect in-process — same client code, same app.
// Two preview paths: a public port (no credential: the proxy alone) and a private port with
// `Authorization: Bearer <API key>` (the proxy plus the key check, whose store lookup the proxy
// caches for up to 5 s, as it caches a port's settings). The paths take turns sample by sample
// (burst by burst, download by download).
import { percentileRows, quantile, row, unavailable } from '../scenarios/runtime-measure.mjs';
import { APP_PORT } from './interactive-echo.mjs';
import { bigBodyRate, latencyProbe, loadGenerator } from './interactive-http.mjs';

const median = (values) => quantile(values, 0.5);
/** A ratio to two decimals (rows round numbers below 100 to one). */
const ratio = (a, b) => (a / b).toFixed(2);
/** `; k answered not 200 (first: …)` when some did. */
const failureNote = ({ failed, failure }) =>
  failed > 0 ? `; ${failed} answered not 200 (first: ${failure})` : '';

/** Each round runs `step(side)` for every side, the order alternating round by round. */
async function rounds(sides, count, step) {
  for (let i = 0; i < count; i++) {
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) await step(side, i);
  }
}

/** Latency, requests/s and MB/s through the preview proxy and directly, with the ratios. */
export async function previewRows({ url, key, api, box, baseline, knobs }) {
  const { port: forwardPort } = await baseline.call('forward');
  const host = `${APP_PORT}-${box.id}.localhost:${new URL(url).port}`;
  const direct = {
    label: 'direct (runtime.connect)',
    target: { url: `http://127.0.0.1:${forwardPort}` },
    note: 'loopback port piped to the app by runtime.connect in-process (no proxy, no auth)',
  };
  const withKey = {
    label: 'preview, private + Bearer key',
    target: { url, host, bearer: key },
    note: 'the API key checked (its store lookup cached up to 5 s)',
  };
  const open = {
    label: 'preview, public port',
    target: { url, host },
    note: 'no credential: the proxy alone',
  };
  const rows = [];
  const sides = [direct, withKey];
  const made = await api.call('PUT', `/v1/sandboxes/${box.id}/ports/${APP_PORT}/public`);
  if (made.status === 200) sides.push(open);
  else rows.push(unavailable(open.label, `PUT …/ports/${APP_PORT}/public → ${made.status}`));

  for (const side of sides) {
    side.probe = latencyProbe(side.target);
    side.load = loadGenerator(side.target, knobs.connections);
    side.latency = [];
    side.requests = 0;
    side.elapsedMs = 0;
    side.rates = [];
  }
  try {
    await rounds(sides, 20, (side) => side.probe.once());
    await rounds(sides, knobs.httpN, async (side) => {
      const ms = await side.probe.once();
      if (ms !== null) side.latency.push(ms);
    });
    await rounds(sides, 1, (side) => side.load.burst(1000));
    await rounds(sides, knobs.seconds, async (side) => {
      const { requests, elapsedMs } = await side.load.burst(1000);
      side.requests += requests;
      side.elapsedMs += elapsedMs;
    });
    await rounds(sides, knobs.reps + 1, async (side, i) => {
      const rate = await bigBodyRate(side.target, knobs.mib);
      if (i > 0) side.rates.push(rate);
    });
  } finally {
    for (const side of sides) {
      side.probe.close();
      side.load.close();
    }
  }

  for (const side of sides) {
    const note = `one keep-alive connection; ${side.note}${failureNote(side.probe.failures)}`;
    rows.push(...percentileRows(`${side.label}: GET / latency`, side.latency, {}, note));
  }
  const perSecond = (side) => side.requests / (side.elapsedMs / 1000);
  for (const side of sides) {
    const note = `${knobs.connections} keep-alive connections, ${knobs.seconds} × 1 s, GET / (2 bytes), 200s counted${failureNote(side.load.failures)}`;
    rows.push(row(`${side.label}: requests/s`, perSecond(side), 'req/s', '', note));
  }
  for (const side of sides) {
    const note = `GET /big, ${knobs.mib} MiB on a fresh connection, median of ${knobs.reps}`;
    rows.push(row(`${side.label}: large body download`, median(side.rates), 'MB/s', '', note));
  }
  for (const side of sides.slice(1)) {
    const name = side === open ? 'public' : 'Bearer';
    rows.push(
      row(
        `latency ${name} preview / direct (p50)`,
        ratio(median(side.latency), median(direct.latency)),
        '×',
        '',
        'ratio of the p50s',
      ),
      row(`requests/s ${name} preview / direct`, ratio(perSecond(side), perSecond(direct)), '×', '', ''),
      row(`MB/s ${name} preview / direct`, ratio(median(side.rates), median(direct.rates)), '×', '', ''),
    );
  }
  return rows;
}
