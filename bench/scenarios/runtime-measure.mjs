// Timing, percentiles, rows and child processes for the runtime scenario.
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Milliseconds `work` took (resolves with [ms, result]). */
export async function timed(work) {
  const start = performance.now();
  const result = await work();
  return [performance.now() - start, result];
}

/** The q-quantile (0..1) of numeric samples, nearest-rank. */
export function quantile(samples, q) {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

/** Round to a readable precision: 0.1 below 100, integers above. */
export function round(value) {
  if (!Number.isFinite(value)) return value;
  return Math.abs(value) < 100 ? Math.round(value * 10) / 10 : Math.round(value);
}

/** One result row. `value` null means not measured; `note` then says why. */
export function row(metric, value, unit, goal = '', note = '') {
  return { metric, value: value === null ? null : round(value), unit, goal, note };
}

/** The machine's load as a row: other work on it inflates every latency in the table. */
export function loadRow(metric) {
  const [one, five] = loadavg();
  const note = `5 min ${five.toFixed(2)}; ${cpus().length} cores; other work on the machine inflates every latency`;
  return row(metric, one, '', '', note);
}

/** p50 and p99 rows for a sample set, goals given as { p50, p99 } strings. */
export function percentileRows(metric, samples, goals = {}, note = '') {
  const n = `n=${samples.length}${note ? `; ${note}` : ''}`;
  return [
    row(`${metric} p50`, quantile(samples, 0.5), 'ms', goals.p50 ?? '', n),
    row(`${metric} p99`, quantile(samples, 0.99), 'ms', goals.p99 ?? '', n),
  ];
}

/** A row saying a measurement could not be made, never a made-up number. */
export function unavailable(metric, reason) {
  return row(metric, null, '', '', `not available: ${oneLine(reason)}`);
}

export function oneLine(reason) {
  const text = reason instanceof Error ? reason.message : String(reason);
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Run a command to completion; rejects with its stderr on a non-zero exit. */
export function runCommand(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      if (stderr.length < 8192) stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else
        reject(new Error(`${cmd} ${args.slice(0, 4).join(' ')}… exited ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

/** Time `n` runs of `once()` after `warmup` untimed ones; returns the samples in ms. */
export async function sample(n, once, warmup = 2) {
  for (let i = 0; i < warmup; i++) await once(-1 - i);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const [ms] = await timed(() => once(i));
    samples.push(ms);
  }
  return samples;
}
