// The preview-proxy rows of the interactive scenario: the sandbox's app through its preview URL
// (Host `3000-<id>.localhost:<port>` on the server's own port) beside the baseline's app through
// a loopback port piped to it by runtime.connect in-process — same client code, same app.
// Two preview paths: a public port (no credential: the proxy alone) and a private port with
// `Authorization: Bearer <API key>` (the proxy plus the key check on every request).
import { percentileRows, quantile, row, unavailable } from '../scenarios/runtime-measure.mjs';
import { APP_PORT } from './interactive-echo.mjs';
import { bigBodyRates, latencySamples, throughput } from './interactive-http.mjs';

const median = (values) => quantile(values, 0.5);
/** A ratio to two decimals (rows round numbers below 100 to one). */
const ratio = (a, b) => (a / b).toFixed(2);

/** Latency, requests/s and MB/s through the preview proxy and directly, with the ratios. */
export async function previewRows({ url, key, api, box, baseline, knobs }) {
  const { port: forwardPort } = await baseline.call('forward');
  const direct = { label: 'direct (runtime.connect)', target: { url: `http://127.0.0.1:${forwardPort}` } };
  const host = `${APP_PORT}-${box.id}.localhost:${new URL(url).port}`;
  const withKey = { label: 'preview, private + Bearer key', target: { url, host, bearer: key } };
  const open = { label: 'preview, public port', target: { url, host } };
  const rows = [];

  const sides = [direct, withKey];
  const made = await api.call('PUT', `/v1/sandboxes/${box.id}/ports/${APP_PORT}/public`);
  if (made.status === 200) sides.push(open);
  else rows.push(unavailable(open.label, `PUT …/ports/${APP_PORT}/public → ${made.status}`));

  const latency = new Map();
  for (const side of sides)
    latency.set(side, await latencySamples(side.target, { n: knobs.httpN, warmup: 20 }));
  const rps = new Map();
  for (const side of sides) rps.set(side, await throughput(side.target, knobs));
  const mbps = new Map();
  for (const side of sides) mbps.set(side, await bigBodyRates(side.target, knobs));

  const notes = {
    [direct.label]: 'loopback port piped to the app by runtime.connect in-process (no proxy, no auth)',
    [withKey.label]: 'the API key checked on every request',
    [open.label]: 'no credential: the proxy alone',
  };
  /** `; k answered not 200 (first: …)` when some did. */
  const failures = ({ failed, failure }, more = '') =>
    failed > 0 ? `; ${failed}${more} answered not 200 (first: ${failure})` : '';
  for (const side of sides) {
    const measured = latency.get(side);
    const note = `one keep-alive connection; ${notes[side.label]}${failures(measured, ' more')}`;
    rows.push(...percentileRows(`${side.label}: GET / latency`, measured.samples, {}, note));
  }
  for (const side of sides) {
    const measured = rps.get(side);
    const note = `${knobs.connections} keep-alive connections × ${knobs.seconds} s, GET / (2 bytes), 200s counted${failures(measured)}`;
    rows.push(row(`${side.label}: requests/s`, measured.perSecond, 'req/s', '', note));
  }
  for (const side of sides) {
    rows.push(
      row(
        `${side.label}: large body download`,
        median(mbps.get(side)),
        'MB/s',
        '',
        `GET /big, ${knobs.mib} MiB, median of ${knobs.reps}`,
      ),
    );
  }
  for (const side of sides.slice(1)) {
    const name = side === open ? 'public' : 'Bearer';
    rows.push(
      row(
        `latency ${name} preview / direct (p50)`,
        ratio(median(latency.get(side).samples), median(latency.get(direct).samples)),
        '×',
        '',
        'ratio of the p50s',
      ),
      row(
        `requests/s ${name} preview / direct`,
        ratio(rps.get(side).perSecond, rps.get(direct).perSecond),
        '×',
        '',
        '',
      ),
      row(
        `MB/s ${name} preview / direct`,
        ratio(median(mbps.get(side)), median(mbps.get(direct))),
        '×',
        '',
        '',
      ),
    );
  }
  return rows;
}
