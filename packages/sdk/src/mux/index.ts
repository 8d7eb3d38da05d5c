/*
 * The client of the multiplexed WebSocket (`corral.mux.v1`, docs/ws-protocol.md). Browser-safe:
 * the Node-only port forwarder is in ./forward.ts, exported from `@corral/sdk/node`.
 */
export type { MuxExit } from './channel.js';
export { type ConnectOptions, type MuxCloseInfo, SandboxConnection } from './connection.js';
export { type MuxExecOptions, type MuxOutput, MuxProcess } from './exec.js';
export { MUX_PROTOCOL } from './frames.js';
export { MuxPty, type MuxPtyOptions } from './pty.js';
export { MuxTcpStream } from './tcp.js';
export { MUX_SIGNALS, type MuxSignal } from './validate.js';
