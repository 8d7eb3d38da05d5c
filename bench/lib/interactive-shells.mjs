// The shell rows of the interactive scenario, each path taking turns with the runtime in-process
// (block by block, or open by open), so that a drifting load skews both alike:
// keystroke echo (terminal WebSocket vs runtime.pty), time to a shell's first output (terminal
// WebSocket, SSH gateway vs runtime.pty), and exec over /ws vs HTTP.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentileRows, quantile, row, unavailable } from '../scenarios/runtime-measure.mjs';
import { rawCat } from './interactive-echo.mjs';
import { connectMux } from './interactive-mux.mjs';
import { openTerminal, sshFirstOutput } from './interactive-sides.mjs';

/** Echo samples are taken in this many blocks per side, the sides alternating. */
const ECHO_BLOCKS = 10;
const ECHO_WARMUP = 50;
/** Pause between shell opens (each side's closed shell is torn down in the background). */
const SETTLE_MS = 150;

/** p50 and p99 rows in microseconds (echo round trips are well under a millisecond). */
function microRows(metric, samplesMs, goalP50, note) {
  const n = `n=${samplesMs.length}; ${note}`;
  const us = (q) => Math.round(quantile(samplesMs, q) * 1000);
  return [row(`${metric} p50`, us(0.5), 'µs', goalP50, n), row(`${metric} p99`, us(0.99), 'µs', '', n)];
}

/** Closes a terminal connection and kills its session (a session outlives its connection). */
async function endTerminal(api, sandboxId, terminal) {
  await terminal.close();
  await api.call('DELETE', `/v1/sandboxes/${sandboxId}/terminal/sessions/${terminal.sessionId}`);
}

/** One byte through the terminal WebSocket and through runtime.pty, back from `cat` in raw mode. */
export async function echoRows({ url, key, api, box, baseline, knobs }) {
  const terminal = await openTerminal(url, key, box.id);
  const ws = [];
  const pty = [];
  try {
    const session = await rawCat(terminal.channel);
    await baseline.call('ptyEchoOpen');
    await session.samples(0, ECHO_WARMUP);
    await baseline.call('ptyEchoBlock', { n: 0, warmup: ECHO_WARMUP });
    const block = Math.ceil(knobs.echoN / ECHO_BLOCKS);
    for (let i = 0; i < ECHO_BLOCKS; i++) {
      ws.push(...(await session.samples(block)));
      pty.push(...(await baseline.call('ptyEchoBlock', { n: block, warmup: 0 })).samples);
    }
  } finally {
    await endTerminal(api, box.id, terminal);
    await baseline.call('ptyEchoClose');
  }
  return [
    ...microRows(
      'terminal WebSocket: keystroke echo',
      ws,
      '≤ 2,000 µs (2 ms)',
      'GET …/terminal (ws client, API key header), 1 byte out → the same byte back',
    ),
    ...microRows(
      'runtime.pty in-process: keystroke echo',
      pty,
      '',
      'the same shell and cat on the runtime’s pty',
    ),
    row(
      'terminal overhead over the pty (p50)',
      (quantile(ws, 0.5) - quantile(pty, 0.5)) * 1000,
      'µs',
      '',
      'WebSocket p50 minus pty p50',
    ),
  ];
}

/** `open()` → ms to first output, `sshN` times, alternating with runtime.pty's; both sample sets. */
async function besidePty(baseline, n, open) {
  const path = [];
  const pty = [];
  for (let i = -2; i < n; i++) {
    const ms = await open();
    // The closed shell is torn down in the background: let that pass before the other side's turn.
    await sleep(SETTLE_MS);
    const [first] = (await baseline.call('ptyFirstOutput', { n: 1 })).samples;
    if (i >= 0) {
      path.push(ms);
      pty.push(first);
    }
    await sleep(SETTLE_MS);
  }
  return { path, pty };
}

const PTY_NOTE = 'runtime.pty(bash -l) → its first byte, taking turns with the row above';

/** A new terminal session each time (upgrade, auth, bash -l) → its first output. */
export async function firstOutputRows({ url, key, api, box, baseline, knobs }) {
  const { path, pty } = await besidePty(baseline, knobs.sshN, async () => {
    const terminal = await openTerminal(url, key, box.id);
    await endTerminal(api, box.id, terminal);
    return terminal.firstOutputMs;
  });
  return [
    ...percentileRows(
      'terminal WebSocket: open → first output',
      path,
      {},
      'new session each time: upgrade, auth, bash -l, its prompt',
    ),
    ...percentileRows('runtime.pty in-process: start → first output', pty, {}, PTY_NOTE),
  ];
}

/** OpenSSH with a fresh `ssh` token each time → the shell's first output. */
export async function sshRows({ api, box, baseline, knobs, sshPort }) {
  const tunnel = `/v1/sandboxes/${box.id}/tunnel`;
  const minted = await api.call('POST', tunnel, { json: { kind: 'ssh' } });
  if (minted.status !== 201) {
    return [
      unavailable(
        'SSH gateway: time to prompt',
        `POST …/tunnel {kind: ssh} → ${minted.status}: ${minted.text().slice(0, 160)}`,
      ),
    ];
  }
  const { path, pty } = await besidePty(baseline, knobs.sshN, async () => {
    const { token } = await api.must(201, 'POST', tunnel, { json: { kind: 'ssh' } });
    return sshFirstOutput({ port: sshPort, token });
  });
  return [
    ...percentileRows(
      'SSH gateway: ssh -tt token@host → first output',
      path,
      {},
      'OpenSSH client process start, handshake, token auth, pty + bash -l, first byte',
    ),
    ...percentileRows('runtime.pty in-process: start → first output', pty, {}, PTY_NOTE),
  ];
}

/** `true` on a /ws exec channel (one connection) and through POST …/exec (one keep-alive connection), alternating. */
export async function muxRows({ url, key, api, box, knobs }) {
  const mux = await connectMux(url, key, box.id);
  const ws = [];
  const http = [];
  try {
    for (let i = -10; i < knobs.execN; i++) {
      const wsMs = await mux.exec('true');
      const start = performance.now();
      const answer = await api.must(200, 'POST', `/v1/sandboxes/${box.id}/exec`, {
        json: { command: 'true' },
      });
      const httpMs = performance.now() - start;
      if (answer.exit_code !== 0) throw new Error(`true exited ${answer.exit_code}`);
      if (i >= 0) {
        ws.push(wsMs);
        http.push(httpMs);
      }
    }
  } finally {
    await mux.close();
  }
  return [
    ...percentileRows(
      '/ws exec channel: true, OPEN → CLOSE',
      ws,
      {},
      'one multiplexed connection, a channel per command',
    ),
    ...percentileRows(
      'HTTP POST …/exec: true',
      http,
      {},
      'one keep-alive connection, same sandbox, taking turns with the /ws samples',
    ),
  ];
}
