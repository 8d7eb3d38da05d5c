import type { ErrorCode } from '../../errors.js';

/** Terminal sizes a client may ask for (columns and rows each). */
export const MIN_TERMINAL_SIZE = 1;
export const MAX_TERMINAL_SIZE = 1000;

/** A client's control frame (a JSON text frame); see docs/terminal-protocol.md. */
export type ClientControl =
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'input'; data: string }
  | { type: 'ping' };

/** A server's control frame (a JSON text frame). */
export type ServerControl =
  | { type: 'session'; id: string; cols: number; rows: number; observer: boolean; replayed_bytes: number }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'exit'; exit_code: number | null; signal: string | null }
  | { type: 'pong' }
  | { type: 'error'; error: { code: ErrorCode; message: string } };

/** True when `n` is a terminal dimension we accept. */
export function isTerminalSize(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= MIN_TERMINAL_SIZE && (n as number) <= MAX_TERMINAL_SIZE;
}

/**
 * Parses a client's text frame; a string describing the problem when it is not a known
 * control frame (the connection stays open: the client gets an `error` frame).
 */
export function parseClientControl(text: string): ClientControl | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'a text frame must be a JSON control object';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'a text frame must be a JSON control object';
  }
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'resize':
      if (!isTerminalSize(frame.cols) || !isTerminalSize(frame.rows)) {
        return `resize needs integer cols and rows between ${MIN_TERMINAL_SIZE} and ${MAX_TERMINAL_SIZE}`;
      }
      return { type: 'resize', cols: frame.cols, rows: frame.rows };
    case 'input':
      if (typeof frame.data !== 'string') return 'input needs a string data';
      return { type: 'input', data: frame.data };
    case 'ping':
      return { type: 'ping' };
    default:
      return 'unknown control frame type (expected resize, input or ping)';
  }
}
