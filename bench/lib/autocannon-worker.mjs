// autocannon in its own process (the fallback when wrk is missing):
// `node autocannon-worker.mjs '{"url","tokens","connections"}' SECONDS` prints a JSON summary.
import autocannon from 'autocannon';

const [spec, seconds] = process.argv.slice(2);
const { url, tokens, connections } = JSON.parse(spec);
let i = 0;
const result = await autocannon({
  url,
  connections,
  duration: Number(seconds),
  requests: [
    {
      setupRequest(request) {
        if (tokens.length === 0) return request;
        i = (i + 1) % tokens.length;
        return { ...request, headers: { ...request.headers, authorization: `Bearer ${tokens[i]}` } };
      },
    },
  ],
});
process.stdout.write(
  JSON.stringify({
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }),
);
