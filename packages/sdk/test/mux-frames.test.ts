import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  FrameType,
  readU32,
  u16Pair,
  u32,
} from '../src/mux/frames.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const text = new TextEncoder();

describe('sdk: mux frame codec (the worked example of docs/ws-protocol.md §7)', () => {
  it('encodes OPEN, STDIN, EOF, WINDOW, RESIZE, SIGNAL and PING byte for byte', () => {
    expect(hex(encodeJsonFrame(FrameType.OPEN, 1, { type: 'exec', command: 'cat', window: 65536 }))).toBe(
      `0100000001${hex(text.encode('{"type":"exec","command":"cat","window":65536}'))}`,
    );
    expect(hex(encodeFrame(FrameType.STDIN, 1, text.encode('hi\n')))).toBe('100000000168690a');
    expect(hex(encodeFrame(FrameType.EOF, 1))).toBe('2000000001');
    expect(hex(encodeFrame(FrameType.WINDOW, 1, u32(3)))).toBe('210000000100000003');
    expect(hex(encodeFrame(FrameType.RESIZE, 2, u16Pair(120, 40)))).toBe('220000000200780028');
    expect(hex(encodeFrame(FrameType.SIGNAL, 1, text.encode('SIGINT')))).toBe('2300000001534947494e54');
    expect(hex(encodeFrame(FrameType.PING, 0, text.encode('ab')))).toBe('50000000006162');
  });

  it("decodes the server's frames, views into the message included", () => {
    const message = Buffer.from('ffff2100000001000000ff', 'hex').subarray(2);
    const frame = decodeFrame(new Uint8Array(message.buffer, message.byteOffset, message.length));
    expect(frame).toMatchObject({ type: FrameType.WINDOW, channel: 1 });
    expect(readU32(frame!.payload)).toBe(255);
    expect(decodeFrame(Buffer.from('24000000', 'hex'))).toBeNull();
    expect(decodeFrame(Buffer.from('1180000000', 'hex'))).toBeNull(); // reserved channel id
    expect(readU32(new Uint8Array(3))).toBeNull();
    const big = decodeFrame(encodeFrame(FrameType.STDOUT, 0x7fff_ffff, new Uint8Array([1, 2])));
    expect(big).toMatchObject({ channel: 0x7fff_ffff, payload: new Uint8Array([1, 2]) });
  });
});
