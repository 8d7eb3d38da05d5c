// Load generation in a separate process: wrk (C, event loop per thread) when installed, else
// autocannon (Node) in a child process. wrk is preferred on a 2-core box: it needs a fraction
// of the CPU autocannon does for the same request rate, leaving more for the server measured.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const AUTOCANNON_WORKER = fileURLToPath(new URL('./autocannon-worker.mjs', import.meta.url));

/** 'wrk' when on PATH, else 'autocannon'; BENCH_LOAD_TOOL=autocannon forces the fallback. */
export function loadTool() {
  if (process.env.BENCH_LOAD_TOOL === 'autocannon') return 'autocannon';
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return 'wrk';
  } catch (err) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    return err.code === 'ENOENT' ? 'autocannon' : 'wrk';
  }
}

function lua(value) {
  return `"${String(value).replace(/["\\]/g, '\\$&')}"`;
}

/** A wrk script: rotates over `tokens` (one Authorization per request) and prints a JSON summary. */
function wrkScript(path, tokens) {
  const rotate =
    tokens.length === 0
      ? ''
      : `local tokens = {${tokens.map((t) => lua(`Bearer ${t}`)).join(',')}}
local n = #tokens
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("GET", ${lua(path)}, { ["Authorization"] = tokens[i] })
end
`;
  return `${rotate}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;
}

function runProcess(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${cmd} exited ${code}: ${stderr.slice(0, 500)}`)),
    );
  });
}

/**
 * Loads `url` for `durationSeconds` after `warmupSeconds` of discarded load, rotating over
 * `tokens` as Bearer credentials (none: no Authorization). Resolves with
 * `{ tool, requestsPerSecond, p50Ms, p99Ms, maxMs, requests, errors, non2xx }`.
 */
export async function runLoad({
  url,
  tokens = [],
  durationSeconds = 10,
  warmupSeconds = 3,
  connections = 32,
}) {
  const tool = loadTool();
  if (tool === 'wrk') {
    const dir = await mkdtemp(join(tmpdir(), 'corral-bench-wrk-'));
    try {
      const script = join(dir, 'load.lua');
      await writeFile(script, wrkScript(new URL(url).pathname, tokens));
      const base = ['-t1', `-c${connections}`, '--timeout', '5s', '-s', script, url];
      if (warmupSeconds > 0) await runProcess('wrk', ['-d', `${warmupSeconds}s`, ...base]);
      const out = await runProcess('wrk', ['-d', `${durationSeconds}s`, ...base]);
      const json = /WRK_JSON (\{.*\})/.exec(out)?.[1];
      if (!json) throw new Error(`no summary in wrk output: ${out.slice(0, 500)}`);
      const s = JSON.parse(json);
      return {
        tool: 'wrk 1 thread',
        requests: s.requests,
        requestsPerSecond: s.requests / (s.duration_us / 1e6),
        p50Ms: s.p50_us / 1000,
        p99Ms: s.p99_us / 1000,
        maxMs: s.max_us / 1000,
        errors: s.connect + s.read + s.write + s.timeout,
        non2xx: s.status,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const args = [AUTOCANNON_WORKER, JSON.stringify({ url, tokens, connections })];
  if (warmupSeconds > 0) await runProcess(process.execPath, [...args, String(warmupSeconds)]);
  const s = JSON.parse(await runProcess(process.execPath, [...args, String(durationSeconds)]));
  return { tool: 'autocannon', ...s };
}
