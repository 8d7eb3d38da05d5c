// The preview-proxy rows of the interactive scenario: the sandbox's app through its preview URL
// (Host `3000-<id>.localhost:<port>` on the server's own port) beside the baseline's app through
// a loopback port piped to it by runtime.connect in-process — same client code, same app.
import { percentileRows, quantile, row } from '../scenarios/runtime-measure.mjs';
import { APP_PORT } from './interactive-echo.mjs';
import { bigBodyRates, latencySamples, throughput } from './interactive-http.mjs';

const median = (values) => quantile(values, 0.5);

/** Latency, requests/s and MB/s through the preview proxy and directly, with the ratios. */
export async function previewRows({ url, key, box, baseline, knobs }) {
  const { port: forwardPort } = await baseline.call('forward');
  const direct = { url: `http://127.0.0.1:${forwardPort}` };
  const host = `${APP_PORT}-${box.id}.localhost:${new URL(url).port}`;
  const viaKey = { url, host, bearer: key };
  const rows = [];

  const latency = { preview: await latencySamples(viaKey, { n: knobs.httpN, warmup: 20 }) };
  latency.direct = await latencySamples(direct, { n: knobs.httpN, warmup: 20 });
  rows.push(
    ...percentileRows(
      'preview URL (Bearer API key): GET / latency',
      latency.preview,
      {},
      'one keep-alive connection; the key is checked on every request',
    ),
    ...percentileRows(
      'direct (runtime.connect): GET / latency',
      latency.direct,
      {},
      'loopback port piped to the app by runtime.connect in-process',
    ),
    row(
      'preview / direct latency (p50)',
      median(latency.preview) / median(latency.direct),
      '×',
      '',
      'ratio of the p50s',
    ),
  );

  const rps = {
    preview: await throughput(viaKey, { connections: knobs.connections, seconds: knobs.seconds }),
    direct: await throughput(direct, { connections: knobs.connections, seconds: knobs.seconds }),
  };
  rows.push(
    row(
      'preview URL (Bearer API key): requests/s',
      rps.preview.perSecond,
      'req/s',
      '',
      `${knobs.connections} keep-alive connections, ${knobs.seconds} s, GET / (2 bytes)`,
    ),
    row('direct (runtime.connect): requests/s', rps.direct.perSecond, 'req/s', '', 'same client, same load'),
    row('preview / direct requests/s', rps.preview.perSecond / rps.direct.perSecond, '×', '', ''),
  );

  const mbps = {
    preview: await bigBodyRates(viaKey, { mib: knobs.mib, reps: knobs.reps }),
    direct: await bigBodyRates(direct, { mib: knobs.mib, reps: knobs.reps }),
  };
  rows.push(
    row(
      'preview URL: large body download',
      median(mbps.preview),
      'MB/s',
      '',
      `GET /big, ${knobs.mib} MiB, median of ${knobs.reps}`,
    ),
    row('direct (runtime.connect): large body download', median(mbps.direct), 'MB/s', '', 'same'),
    row('preview / direct MB/s', median(mbps.preview) / median(mbps.direct), '×', '', ''),
  );
  return rows;
}
