// HTTP figures of the interactive scenario, the same code for every path to the sandbox's app:
// through the preview proxy (a preview Host on the server's port) and "direct" (a loopback port
// piped through runtime.connect). A target is `{ url, host?, bearer? }`: `host` replaces the Host
// header (preview hosts need no DNS that way), `bearer` adds `Authorization: Bearer …`.
// Each function measures one step, so that the caller can interleave the paths (a machine whose
// load drifts then skews them alike).
import { performance } from 'node:perf_hooks';
import { createClient } from './http-client.mjs';

function headersOf(target) {
  return target.host ? { host: target.host } : {};
}

/** A tally of answers other than 200: how many, and the first (status and body start). */
export function failureTally() {
  return {
    failed: 0,
    failure: null,
    add(res) {
      this.failed++;
      this.failure ??= `${res.status} ${res.text().slice(0, 120)}`;
    },
  };
}

/**
 * `GET /` on one keep-alive connection: `once()` resolves with the ms of a 200 answer, or null
 * (the answer counted in `failures`). `close()` ends the connection.
 */
export function latencyProbe(target) {
  const client = createClient(target.url, { key: target.bearer, maxSockets: 1 });
  const failures = failureTally();
  return {
    failures,
    async once() {
      const start = performance.now();
      const res = await client.call('GET', '/', { headers: headersOf(target) });
      const ms = performance.now() - start;
      if (res.status === 200 && res.text() === 'ok') return ms;
      failures.add(res);
      return null;
    },
    close: () => client.close(),
  };
}

/**
 * `connections` loops of `GET /` on keep-alive connections: `burst(ms)` runs them for `ms` and
 * resolves with `{ requests (200s), elapsedMs }`; other answers go to `failures`.
 */
export function loadGenerator(target, connections) {
  const client = createClient(target.url, { key: target.bearer, maxSockets: connections });
  const failures = failureTally();
  const loop = async (until, counter) => {
    while (performance.now() < until) {
      const res = await client.call('GET', '/', { headers: headersOf(target) });
      if (res.status === 200) counter.requests++;
      else failures.add(res);
    }
  };
  return {
    failures,
    async burst(ms) {
      const counter = { requests: 0 };
      const start = performance.now();
      await Promise.all(Array.from({ length: connections }, () => loop(start + ms, counter)));
      return { requests: counter.requests, elapsedMs: performance.now() - start };
    },
    close: () => client.close(),
  };
}

/** `GET /big?mib=…` read to its end on a fresh connection: its rate in MB/s (10^6 bytes). */
export async function bigBodyRate(target, mib) {
  const client = createClient(target.url, { key: target.bearer, maxSockets: 1 });
  const count = async (res) => {
    let bytes = 0;
    for await (const chunk of res) bytes += chunk.length;
    return bytes;
  };
  try {
    const start = performance.now();
    const res = await client.call('GET', `/big?mib=${mib}`, { headers: headersOf(target), sink: count });
    const seconds = (performance.now() - start) / 1000;
    if (res.status !== 200 || res.body !== mib * 2 ** 20) {
      throw new Error(`GET /big → ${res.status}, ${res.body} bytes (wanted ${mib * 2 ** 20})`);
    }
    return res.body / 1e6 / seconds;
  } finally {
    client.close();
  }
}
