/*
 * The frame codec of the multiplexed WebSocket (`corral.mux.v1`, docs/ws-protocol.md): every
 * binary message is one frame, `u8 type | u32 channel (big-endian) | payload`. Web types only
 * (Uint8Array, DataView, TextEncoder), so it runs in browsers.
 */

/** The WebSocket subprotocol this client speaks. */
export const MUX_PROTOCOL = 'corral.mux.v1';
/** Bytes before the payload. */
export const HEADER_BYTES = 5;
/** The largest message either side may send (header included). */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** The largest STDIN payload this client puts in one frame (well under the message limit). */
export const MAX_STDIN_PAYLOAD = 64 * 1024;
/** The largest channel id. */
export const MAX_CHANNEL_ID = 0x7fff_ffff;
/** The client's receive window per channel when the caller names none (the protocol's default). */
export const DEFAULT_WINDOW_BYTES = 256 * 1024;
/** The most credit a channel may hold. */
export const MAX_WINDOW_BYTES = 1024 * 1024 * 1024;

/** Frame types. */
export const FrameType = {
  OPEN: 0x01,
  OPEN_OK: 0x02,
  OPEN_ERROR: 0x03,
  STDIN: 0x10,
  STDOUT: 0x11,
  STDERR: 0x12,
  EOF: 0x20,
  WINDOW: 0x21,
  RESIZE: 0x22,
  SIGNAL: 0x23,
  EXIT: 0x24,
  CLOSE: 0x30,
  ERROR: 0x40,
  PING: 0x50,
  PONG: 0x51,
} as const;

/** Stream numbers in the server's EOF frames. */
export const Stream = { STDOUT: 1, STDERR: 2 } as const;

/** One decoded frame (the payload is a view into the message). */
export interface Frame {
  type: number;
  channel: number;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one frame. */
export function encodeFrame(type: number, channel: number, payload: Uint8Array = EMPTY): Uint8Array {
  const frame = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, type);
  view.setUint32(1, channel, false);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

/** Encodes a frame whose payload is JSON. */
export function encodeJsonFrame(type: number, channel: number, body: unknown): Uint8Array {
  return encodeFrame(type, channel, encoder.encode(JSON.stringify(body)));
}

/** A 4-byte big-endian u32 payload (WINDOW). */
export function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** Two u16 big-endian (RESIZE). */
export function u16Pair(a: number, b: number): Uint8Array {
  const out = new Uint8Array(4);
  const view = new DataView(out.buffer);
  view.setUint16(0, a, false);
  view.setUint16(2, b, false);
  return out;
}

/** Reads a u32 payload (WINDOW); null when the payload is not 4 bytes. */
export function readU32(payload: Uint8Array): number | null {
  if (payload.length !== 4) return null;
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, false);
}

/** Decodes one message; null when it is not a frame (too short, reserved channel id). */
export function decodeFrame(message: Uint8Array): Frame | null {
  if (message.length < HEADER_BYTES) return null;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const channel = view.getUint32(1, false);
  if (channel > MAX_CHANNEL_ID) return null;
  return { type: view.getUint8(0), channel, payload: message.subarray(HEADER_BYTES) };
}

/** Parses a JSON payload (an object), or null when it is not one. */
export function parseJson(payload: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(payload));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Text as UTF-8, bytes as they are. */
export function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}
