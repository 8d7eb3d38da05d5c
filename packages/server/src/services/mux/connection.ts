import type { Runtime } from '@corral/runtime';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { ApiError, type ErrorCode, errorBody, toApiError } from '../../errors.js';
import { SIGNAL_NAMES } from '../sandboxes/exec.js';
import type { Channel, ChannelHost, ChannelStats } from './channel.js';
import {
  decodeFrame,
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameType,
  MAX_CHANNELS,
  SERVER_WINDOW_BYTES,
} from './frames.js';
import { ExecChannel, PtyChannel } from './kinds.js';
import { parseOpen } from './open.js';
import { startChannel } from './start.js';

/** Above this many bytes queued on the WebSocket, channels stop sending (1 MiB). */
export const WS_HIGH_WATER_BYTES = 1024 * 1024;
/** Channels send again once the WebSocket's queue is down to this (256 KiB). */
export const WS_LOW_WATER_BYTES = 256 * 1024;
/** The largest PING payload echoed. */
const MAX_PING_BYTES = 64;

/** What a connection needs from the server. */
export interface MuxDeps {
  sandboxId: string;
  runtime: () => Runtime;
  envFor: (sandboxId: string) => Promise<Record<string, string>>;
  touch: (sandboxId: string) => void;
  log: FastifyBaseLogger;
  /** The connection has closed (everything it started is being killed). */
  onEnd: (connection: MuxConnection) => void;
}

/** A connection's counters, for introspection and tests. */
export interface MuxStats {
  sandboxId: string;
  /** Bytes queued on the WebSocket. */
  wsBufferedBytes: number;
  /** Output held by channels (waiting for credit or for the WebSocket). */
  heldBytes: number;
  channels: ChannelStats[];
}

/** An error frame body in the API's error shape (no request id: it is not a request). */
function errorJson(code: ErrorCode, details: Record<string, unknown>, message?: string) {
  return { error: errorBody(new ApiError(code, details, message), '').error };
}

/**
 * One multiplexed WebSocket of one sandbox (docs/ws-protocol.md): decodes frames, opens
 * exec/pty/tcp channels, routes input and credit to them, and kills everything it started
 * when it closes. Bad frames close it with 1002 (1003 for text, 1008 for flow-control abuse).
 */
export class MuxConnection implements ChannelHost {
  readonly #socket: WebSocket;
  readonly #deps: MuxDeps;
  readonly #channels = new Map<number, Channel>();
  /** Ids whose OPEN is in progress; true once the client closed them meanwhile. */
  readonly #opening = new Map<number, boolean>();
  #blocked = false;
  #ended = false;
  #alive = true;

  constructor(socket: WebSocket, deps: MuxDeps) {
    this.#socket = socket;
    this.#deps = deps;
    socket.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    socket.on('pong', () => {
      this.#alive = true;
    });
    socket.on('close', () => this.#end());
    socket.on('error', () => this.#end());
  }

  get sandboxId(): string {
    return this.#deps.sandboxId;
  }

  get congested(): boolean {
    if (this.#socket.bufferedAmount <= WS_HIGH_WATER_BYTES) return false;
    this.#blocked = true;
    return true;
  }

  stats(): MuxStats {
    const channels = [...this.#channels.values()].map((c) => c.stats());
    return {
      sandboxId: this.#deps.sandboxId,
      wsBufferedBytes: this.#socket.bufferedAmount,
      heldBytes: channels.reduce((sum, c) => sum + c.heldBytes, 0),
      channels,
    };
  }

  send(frame: Buffer): void {
    if (this.#ended || this.#socket.readyState !== this.#socket.OPEN) return;
    this.#socket.send(frame, { binary: true }, () => this.#drained());
  }

  activity(): void {
    this.#deps.touch(this.#deps.sandboxId);
  }

  released(channel: Channel): void {
    if (this.#channels.get(channel.id) === channel) this.#channels.delete(channel.id);
  }

  violation(code: number, reason: string, errorCode: ErrorCode = 'BAD_REQUEST'): void {
    if (this.#ended) return;
    this.send(encodeJsonFrame(FrameType.ERROR, 0, errorJson(errorCode, { reason }, reason)));
    this.#socket.close(code, reason.slice(0, 120));
    this.#end();
  }

  /** Pings the client; one that did not answer the previous ping is cut off. */
  heartbeat(): void {
    if (!this.#alive) {
      this.#socket.terminate();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  /** Closes the connection (server shutdown) and kills what it started. */
  close(code = 1001, reason = 'server closing'): void {
    this.#socket.close(code, reason);
    this.#end();
  }

  #drained(): void {
    if (!this.#blocked || this.#socket.bufferedAmount > WS_LOW_WATER_BYTES) return;
    this.#blocked = false;
    for (const channel of [...this.#channels.values()]) channel.flush();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const channel of [...this.#channels.values()]) channel.abort();
    this.#channels.clear();
    this.#deps.onEnd(this);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    if (!isBinary) {
      this.send(encodeJsonFrame(FrameType.ERROR, 0, errorJson('BAD_REQUEST', { reason: 'text frame' })));
      this.#socket.close(1003, 'binary frames only');
      this.#end();
      return;
    }
    const frame = decodeFrame(data);
    if (typeof frame === 'string') {
      this.violation(1002, frame);
      return;
    }
    this.activity();
    try {
      this.#dispatch(frame);
    } catch (err) {
      this.#deps.log.error({ err, sandbox_id: this.#deps.sandboxId }, 'mux frame failed');
      this.violation(1011, 'internal error', 'INTERNAL');
    }
  }

  #dispatch(frame: Frame): void {
    const { type, channel: id, payload } = frame;
    if (id === 0) {
      if (type === FrameType.PING) {
        if (payload.length > MAX_PING_BYTES)
          this.violation(1002, `PING payload above ${MAX_PING_BYTES} bytes`);
        else this.send(encodeFrame(FrameType.PONG, 0, payload));
      } else {
        this.violation(1002, `frame type 0x${type.toString(16)} on channel 0`);
      }
      return;
    }
    if (type === FrameType.OPEN) {
      this.#open(id, payload);
      return;
    }
    if (type === FrameType.CLOSE && this.#opening.has(id)) {
      this.#opening.set(id, true);
      return;
    }
    const channel = this.#channels.get(id);
    switch (type) {
      case FrameType.STDIN:
        channel?.input(payload);
        return;
      case FrameType.EOF:
        channel?.endInput();
        return;
      case FrameType.WINDOW:
        if (payload.length !== 4) this.violation(1002, 'a WINDOW payload is 4 bytes');
        else channel?.grant(payload.readUInt32BE(0));
        return;
      case FrameType.RESIZE:
        if (payload.length !== 4) this.violation(1002, 'a RESIZE payload is 4 bytes');
        else if (channel) this.#resize(channel, payload.readUInt16BE(0), payload.readUInt16BE(2));
        return;
      case FrameType.SIGNAL:
        if (channel) this.#signal(channel, payload.toString('latin1'));
        return;
      case FrameType.CLOSE:
        channel?.close();
        return;
      case FrameType.PING:
      case FrameType.PONG:
        this.violation(1002, 'PING and PONG go on channel 0');
        return;
      default:
        this.violation(1002, `frame type 0x${type.toString(16)} is sent by the server only`);
    }
  }

  #channelError(id: number, code: ErrorCode, reason: string): void {
    this.send(encodeJsonFrame(FrameType.ERROR, id, errorJson(code, { reason }, reason)));
  }

  #resize(channel: Channel, cols: number, rows: number): void {
    if (cols < 1 || rows < 1 || cols > 1000 || rows > 1000) {
      this.#channelError(channel.id, 'VALIDATION_ERROR', 'cols and rows must be 1 … 1000');
    } else if (!channel.resize(cols, rows)) {
      this.#channelError(channel.id, 'BAD_REQUEST', `a ${channel.kind} channel has no terminal`);
    }
  }

  #signal(channel: Channel, name: string): void {
    if (!SIGNAL_NAMES.has(name)) {
      this.#channelError(channel.id, 'VALIDATION_ERROR', `unknown signal ${name.slice(0, 16)}`);
    } else if (!channel.signal(name as NodeJS.Signals)) {
      this.#channelError(channel.id, 'BAD_REQUEST', `a ${channel.kind} channel has no process`);
    }
  }

  #open(id: number, payload: Buffer): void {
    if (this.#channels.has(id) || this.#opening.has(id)) {
      this.violation(1002, `channel ${id} is already open`);
      return;
    }
    const openError = (code: ErrorCode, details: Record<string, unknown>, message?: string) =>
      this.send(encodeJsonFrame(FrameType.OPEN_ERROR, id, errorJson(code, details, message)));
    if (this.#channels.size + this.#opening.size >= MAX_CHANNELS) {
      openError('CONFLICT', { reason: 'too many channels', max: MAX_CHANNELS });
      return;
    }
    const request = parseOpen(payload);
    if (typeof request === 'string') {
      openError('VALIDATION_ERROR', { reason: request });
      return;
    }
    this.#opening.set(id, false);
    startChannel(this, id, request, this.#deps).then(
      (channel) => {
        const cancelled = this.#opening.get(id) === true;
        this.#opening.delete(id);
        if (this.#ended || cancelled) {
          channel.abort();
          if (cancelled) openError('CONFLICT', { reason: 'closed by the client while opening' });
          return;
        }
        this.#channels.set(id, channel);
        const pid =
          channel instanceof ExecChannel
            ? channel.proc.pid
            : channel instanceof PtyChannel
              ? channel.pty.pid
              : undefined;
        this.send(
          encodeJsonFrame(FrameType.OPEN_OK, id, {
            window: SERVER_WINDOW_BYTES,
            ...(pid === undefined ? {} : { pid }),
          }),
        );
        channel.begin();
      },
      (err: unknown) => {
        this.#opening.delete(id);
        const apiErr = toApiError(err);
        if (apiErr.status >= 500 && apiErr.code !== 'SANDBOX_UNAVAILABLE')
          this.#deps.log.error({ err, sandbox_id: this.#deps.sandboxId }, 'mux channel failed to open');
        this.send(encodeJsonFrame(FrameType.OPEN_ERROR, id, { error: errorBody(apiErr, '').error }));
      },
    );
  }
}
