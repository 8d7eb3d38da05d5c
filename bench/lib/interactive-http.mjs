// HTTP figures of the interactive scenario, the same code for every path to the sandbox's app:
// through the preview proxy (a preview Host on the server's port) and "direct" (a loopback port
// piped through runtime.connect). A target is `{ url, host?, bearer? }`: `host` replaces the Host
// header (preview hosts need no DNS that way), `bearer` adds `Authorization: Bearer …`.
import { performance } from 'node:perf_hooks';
import { createClient } from './http-client.mjs';

function clientFor(target, maxSockets) {
  return createClient(target.url, { key: target.bearer, maxSockets });
}

function headersOf(target) {
  return target.host ? { host: target.host } : {};
}

/**
 * `GET /` on one keep-alive connection, `n` times after `warmup`: `{ samples, failed, failure }`,
 * the samples (ms) of the 200 answers only; `failed` counts the others, `failure` the first.
 */
export async function latencySamples(target, { n, warmup }) {
  const client = clientFor(target, 1);
  try {
    const samples = [];
    let failed = 0;
    let failure = null;
    for (let i = -warmup; i < n; i++) {
      const start = performance.now();
      const res = await client.call('GET', '/', { headers: headersOf(target) });
      const ms = performance.now() - start;
      if (res.status !== 200 || res.text() !== 'ok') {
        failed++;
        failure ??= `${res.status} ${res.text().slice(0, 120)}`;
      } else if (i >= 0) samples.push(ms);
    }
    if (samples.length === 0) throw new Error(`GET / never answered 200: ${failure}`);
    return { samples, failed, failure };
  } finally {
    client.close();
  }
}

/**
 * `connections` loops of `GET /` (one keep-alive connection each) for `seconds`, after one
 * second of the same as warm-up: `{ requests, perSecond, failed, failure }` — requests/s counts
 * the 200s only; `failed` the other answers, `failure` the first of them (status and body).
 */
export async function throughput(target, { connections, seconds }) {
  const client = clientFor(target, connections);
  const loop = async (until, counter) => {
    while (performance.now() < until) {
      const res = await client.call('GET', '/', { headers: headersOf(target) });
      if (res.status === 200) counter.requests++;
      else {
        counter.failed++;
        counter.failure ??= `${res.status} ${res.text().slice(0, 120)}`;
      }
    }
  };
  const burst = async (durationMs) => {
    const counter = { requests: 0, failed: 0, failure: null };
    const start = performance.now();
    const until = start + durationMs;
    await Promise.all(Array.from({ length: connections }, () => loop(until, counter)));
    return { ...counter, elapsedMs: performance.now() - start };
  };
  try {
    await burst(1000);
    const { requests, failed, failure, elapsedMs } = await burst(seconds * 1000);
    return { requests, perSecond: requests / (elapsedMs / 1000), failed, failure };
  } finally {
    client.close();
  }
}

/** `GET /big?mib=…` read to its end `reps` times (after one untimed): MB/s (10^6 bytes) of each. */
export async function bigBodyRates(target, { mib, reps }) {
  const client = clientFor(target, 1);
  const count = async (res) => {
    let bytes = 0;
    for await (const chunk of res) bytes += chunk.length;
    return bytes;
  };
  try {
    const rates = [];
    for (let i = -1; i < reps; i++) {
      const start = performance.now();
      const res = await client.call('GET', `/big?mib=${mib}`, { headers: headersOf(target), sink: count });
      const seconds = (performance.now() - start) / 1000;
      if (res.status !== 200 || res.body !== mib * 2 ** 20) {
        throw new Error(`GET /big → ${res.status}, ${res.body} bytes (wanted ${mib * 2 ** 20})`);
      }
      if (i >= 0) rates.push(res.body / 1e6 / seconds);
    }
    return rates;
  } finally {
    client.close();
  }
}
