/**
 * `@corral/sdk`: the TypeScript client of Corral's HTTP API. Works in Node ≥ 20 and in
 * browsers (only fetch, web streams, TextDecoder and AbortController on this path); Node
 * stream helpers are in `@corral/sdk/node`.
 */
export { type AddSshKeyParams, ApiKeys, defaultSshKeyName, type SshKeyInfo, SshKeys } from './account.js';
export type { UploadData } from './body.js';
export { Corral, type CorralOptions, DEFAULT_BASE_URL } from './client.js';
export * from './errors.js';
export type { ExecExit, ExecOptions, ExecOutputEvent, ExecResult, ExecStreamOptions } from './exec.js';
export { ExecStream } from './exec.js';
export type { ByteRange, ReadOptions, WriteOptions } from './files.js';
export { SandboxFiles } from './files.js';
export type { paths as ApiPaths } from './generated/openapi.generated.js';
export type { RetryInfo } from './http.js';
export {
  InteractiveAccess,
  type ObserverToken,
  type PortForward,
  type PortInfo,
  type PortSettings,
  type SandboxToken,
  type TokenOptions,
  type Tunnel,
  type TunnelParams,
} from './interactive.js';
export {
  type ConnectOptions,
  MUX_PROTOCOL,
  MUX_SIGNALS,
  type MuxCloseInfo,
  type MuxExecOptions,
  type MuxExit,
  type MuxOutput,
  MuxProcess,
  MuxPty,
  type MuxPtyOptions,
  type MuxSignal,
  MuxTcpStream,
  SandboxConnection,
} from './mux/index.js';
export { Page } from './page.js';
export type { ListSandboxesOptions } from './resources.js';
export { Sandboxes, Snapshots, Templates } from './resources.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export { Sandbox } from './sandbox.js';
export { type ListOptions, SandboxEnv, SandboxProcesses, SandboxSnapshots } from './sandbox-parts.js';
export { Terminal, type TerminalExit, type TerminalOptions, type WebSocketLike } from './terminal.js';
export type * from './types.js';

/** This SDK's version. */
export const SDK_VERSION = '0.1.0';
