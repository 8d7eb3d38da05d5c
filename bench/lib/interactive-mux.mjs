// A minimal client of the multiplexed WebSocket (docs/ws-protocol.md, `corral.mux.v1`) for the
// interactive scenario: one connection, an exec channel per command, timed OPEN → CLOSE.
// Frames are `u8 type | u32 channel (big-endian) | payload`.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const OPEN = 0x01;
const OPEN_ERROR = 0x03;
const STDOUT = 0x11;
const STDERR = 0x12;
const WINDOW = 0x21;
const EXIT = 0x24;
const CLOSE = 0x30;

function frame(type, channel, payload = Buffer.alloc(0)) {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(channel, 1);
  return Buffer.concat([head, payload]);
}

/** Connects to `GET /v1/sandboxes/{id}/ws` with the key as a header: `{ exec(command, args) → ms, close() }`. */
export async function connectMux(baseUrl, key, sandboxId) {
  const url = `${baseUrl.replace(/^http/, 'ws')}/v1/sandboxes/${sandboxId}/ws`;
  const socket = new WebSocket(url, ['corral.mux.v1'], { headers: { authorization: `Bearer ${key}` } });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) =>
      reject(new Error(`ws upgrade → HTTP ${res.statusCode}`)),
    );
  });
  const waiters = new Map();
  socket.on('message', (data) => {
    const type = data[0];
    const channel = data.readUInt32BE(1);
    const payload = data.subarray(5);
    const waiter = waiters.get(channel);
    if (!waiter) return;
    if (type === STDOUT || type === STDERR) {
      const credit = Buffer.alloc(4);
      credit.writeUInt32BE(payload.length, 0);
      socket.send(frame(WINDOW, channel, credit));
    } else if (type === EXIT) waiter.exit = JSON.parse(payload.toString('utf8'));
    else if (type === OPEN_ERROR || type === CLOSE) {
      if (type === OPEN_ERROR) waiter.error = payload.toString('utf8');
      waiters.delete(channel);
      waiter.done();
    }
  });
  let next = 1;
  return {
    /** Runs `command` on a new channel; resolves with the ms from OPEN to the channel's CLOSE. */
    exec(command, args = []) {
      const channel = next++;
      return new Promise((resolve, reject) => {
        const start = performance.now();
        const waiter = {
          done: () => {
            const ms = performance.now() - start;
            if (waiter.error) reject(new Error(`OPEN_ERROR ${waiter.error}`));
            else if (waiter.exit?.exit_code !== 0)
              reject(new Error(`${command} exited ${JSON.stringify(waiter.exit)}`));
            else resolve(ms);
          },
        };
        waiters.set(channel, waiter);
        socket.send(frame(OPEN, channel, Buffer.from(JSON.stringify({ type: 'exec', command, args }))));
      });
    },
    close: () =>
      new Promise((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', resolve);
        socket.close();
      }),
  };
}
