// The two sides of the interactive scenario: the Corral server's interactive surfaces (the
// terminal WebSocket, the SSH gateway) reached as a client would, and the in-process baseline
// (bench/lib/interactive-runtime.mjs, forked).
import { fork, spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** Forks the baseline worker; resolves once its sandbox and app are up: `{ call(op, args), shutdown() }`. */
export async function startBaseline(options) {
  const child = fork(join(options.root, 'bench/lib/interactive-runtime.mjs'), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let seq = 0;
  child.on('message', ({ seq: n, ok, result, error }) => {
    const waiter = pending.get(n);
    if (!waiter) return;
    pending.delete(n);
    if (ok) waiter.resolve(result);
    else waiter.reject(new Error(`baseline worker: ${error}`));
  });
  child.on('exit', (code) => {
    for (const { reject } of pending.values()) reject(new Error(`baseline worker exited ${code}`));
    pending.clear();
  });
  const ready = new Promise((resolve, reject) => pending.set(0, { resolve, reject }));
  const call = (op, args) =>
    new Promise((resolve, reject) => {
      const n = ++seq;
      pending.set(n, { resolve, reject });
      child.send({ seq: n, op, args });
    });
  const shutdown = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await call('shutdown').catch(() => child.kill('SIGKILL'));
    await exited;
  };
  try {
    await ready;
  } catch (err) {
    await shutdown();
    throw err;
  }
  return { call, shutdown };
}

/**
 * Opens `GET /v1/sandboxes/{id}/terminal` with the key as a header; resolves once the first
 * binary frame (the shell's first output) arrived: `{ channel, sessionId, firstOutputMs, close() }`
 * (`channel` = `{ send, onData }` for echoSamples; `close()` detaches, the caller kills the session).
 */
export async function openTerminal(baseUrl, key, sandboxId) {
  const url = `${baseUrl.replace(/^http/, 'ws')}/v1/sandboxes/${sandboxId}/terminal`;
  const start = performance.now();
  const socket = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
  let sessionId = null;
  const listeners = new Set();
  const first = new Promise((resolve, reject) => {
    socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        const frame = JSON.parse(data.toString('utf8'));
        if (frame.type === 'session') sessionId = frame.id;
        return;
      }
      resolve(performance.now() - start);
      for (const listener of listeners) listener(data);
    });
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) =>
      reject(new Error(`terminal upgrade → HTTP ${res.statusCode}`)),
    );
    socket.once('close', (code) => reject(new Error(`terminal closed (${code}) before any output`)));
  });
  const firstOutputMs = await first;
  socket.setNoDelay?.(true);
  return {
    sessionId,
    firstOutputMs,
    channel: {
      send: (bytes) => socket.send(bytes, { binary: true }),
      onData: (listener) => listeners.add(listener),
    },
    close: () =>
      new Promise((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', resolve);
        socket.close();
      }),
  };
}

/**
 * OpenSSH's `ssh -tt <token>@127.0.0.1 -p <port>` (no known_hosts, no agent, no config file):
 * milliseconds from spawning it to its first byte of output (the shell's prompt). The client is
 * killed afterwards.
 */
export function sshFirstOutput({ port, token, deadlineMs = 20_000 }) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-tt',
        '-p',
        String(port),
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentityAgent=none',
        '-o',
        'PubkeyAuthentication=no',
        `${token}@127.0.0.1`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const timer = setTimeout(
      () => finish(new Error(`no output from ssh within ${deadlineMs} ms: ${stderr}`)),
      deadlineMs,
    );
    const finish = (err, ms) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (err) reject(err);
      else resolve(ms);
    };
    child.stdout.once('data', () => finish(null, performance.now() - start));
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('error', (err) => finish(err));
    child.once('exit', (code) => finish(new Error(`ssh exited ${code} before any output: ${stderr.trim()}`)));
  });
}
