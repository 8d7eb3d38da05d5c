/*
 * The frame codec of the multiplexed WebSocket (docs/ws-protocol.md, subprotocol
 * `corral.mux.v1`): every binary WebSocket message is one frame,
 * `u8 type | u32 channel (big-endian) | payload`.
 */

/** The WebSocket subprotocol of this version of the protocol. */
export const MUX_PROTOCOL = 'corral.mux.v1';

/** Bytes before the payload: the type and the channel id. */
export const HEADER_BYTES = 5;
/** The largest WebSocket message either side may send (the server's maxPayload, 1 MiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** The largest payload of a data frame the server sends (32 KiB). */
export const MAX_DATA_PAYLOAD = 32 * 1024;
/** Channels one connection may have open at once. */
export const MAX_CHANNELS = 64;
/** The largest channel id (ids are 1 … 2^31-1; 0 is the connection itself). */
export const MAX_CHANNEL_ID = 0x7fff_ffff;
/** The receive window the server grants each channel at open (256 KiB). */
export const SERVER_WINDOW_BYTES = 256 * 1024;
/** The client's window when its OPEN names none (256 KiB). */
export const DEFAULT_CLIENT_WINDOW_BYTES = 256 * 1024;
/** The most credit a channel may hold at once, either way (2^30 bytes). */
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
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** Stream numbers in EOF frames sent by the server. */
export const Stream = { STDOUT: 1, STDERR: 2 } as const;

/** One decoded frame. */
export interface Frame {
  type: FrameTypeCode;
  channel: number;
  payload: Buffer;
}

/** Encodes one frame. */
export function encodeFrame(type: FrameTypeCode, channel: number, payload: Buffer = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt8(type, 0);
  frame.writeUInt32BE(channel, 1);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

/** Encodes a frame whose payload is a JSON object. */
export function encodeJsonFrame(type: FrameTypeCode, channel: number, body: object): Buffer {
  return encodeFrame(type, channel, Buffer.from(JSON.stringify(body), 'utf8'));
}

/** A u32 big-endian payload (WINDOW). */
export function u32(n: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32BE(n, 0);
  return buf;
}

const EMPTY = Buffer.alloc(0);

/** Decodes one message; a string saying what is wrong when it is not a frame. */
export function decodeFrame(message: Buffer): Frame | string {
  if (message.length < HEADER_BYTES) return `a frame needs at least ${HEADER_BYTES} bytes`;
  const type = message.readUInt8(0);
  if (!KNOWN_TYPES.has(type)) return `unknown frame type 0x${type.toString(16).padStart(2, '0')}`;
  const channel = message.readUInt32BE(1);
  if (channel > MAX_CHANNEL_ID) return `channel id ${channel} is out of range`;
  return { type: type as FrameTypeCode, channel, payload: message.subarray(HEADER_BYTES) };
}
