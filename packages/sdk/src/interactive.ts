import type { paths } from './generated/openapi.generated.js';
import type { Transport } from './http.js';
import { type ConnectOptions, SandboxConnection } from './mux/index.js';
import type { WebSocketLike } from './terminal.js';
import type { RequestOptions } from './types.js';

type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type Sandboxes = '/v1/sandboxes/{id}';

/** A port of a sandbox: listening now (with its process) or declared, with its preview URL and access. */
export type PortInfo = Json<paths[`${Sandboxes}/ports`]['get']['responses'][200]>['data'][number];
/** A port's preview settings after a change: public, password-protected. */
export type PortSettings = Json<paths[`${Sandboxes}/ports/{port}/public`]['put']['responses'][200]>;
/** The body of `POST …/tunnel`: `kind` `ssh`, `shell` (terminal WebSocket) or `port` (with `port`). */
export type TunnelParams = Json<NonNullable<paths[`${Sandboxes}/tunnel`]['post']['requestBody']>>;
/** A tunnel token (shown once) with the ssh `command` or the `url` to open. */
export type Tunnel = Json<paths[`${Sandboxes}/tunnel`]['post']['responses'][201]>;
/** A port-forward token and the preview URL that swaps it for a cookie. */
export type PortForward = Json<paths[`${Sandboxes}/port-forward`]['post']['responses'][201]>;
/** A read-only terminal observer token and its WebSocket URL. */
export type ObserverToken = Json<paths[`${Sandboxes}/observe`]['post']['responses'][201]>;
/** A tunnel, observe or port-forward token as listed (never its secret). */
export type SandboxToken = Json<paths[`${Sandboxes}/tokens`]['get']['responses'][200]>['data'][number];

/** Options of the token-minting calls. */
export interface TokenOptions extends RequestOptions {
  /** Lifetime in seconds (the server's default when absent). */
  ttlSeconds?: number;
}

/**
 * Ports, preview access and tokens of one sandbox (`box.ports()`, `box.tunnel(…)`, …): the
 * interactive-access half of `Sandbox`, which extends it.
 */
export class InteractiveAccess {
  readonly #transport: Transport;
  readonly #sandboxId: string;
  readonly #webSocket: WebSocketLike | undefined;

  constructor(transport: Transport, sandboxId: string, webSocket?: WebSocketLike) {
    this.#transport = transport;
    this.#sandboxId = sandboxId;
    this.#webSocket = webSocket;
  }

  #path(suffix: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.#sandboxId)}${suffix}`;
  }

  #post<T>(suffix: string, json: object, options: RequestOptions): Promise<T> {
    return this.#transport.json<T>({
      method: 'POST',
      path: this.#path(suffix),
      json,
      signal: options.signal,
    });
  }

  /**
   * Opens one multiplexed WebSocket to the sandbox (`corral.mux.v1`): run commands, terminals
   * and TCP streams over it, many at once (`conn.exec`, `conn.pty`, `conn.tcp`). Close it when done.
   */
  connect(options: ConnectOptions = {}): Promise<SandboxConnection> {
    const global = (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
    const impl = this.#webSocket ?? global;
    return SandboxConnection.open(this.#transport, impl, this.#sandboxId, options);
  }

  /** Ports listening inside now (with process and preview URL), then declared ones nothing listens on. */
  async ports(options: RequestOptions = {}): Promise<PortInfo[]> {
    const answer = await this.#transport.json<{ data: PortInfo[] }>({
      method: 'GET',
      path: this.#path('/ports'),
      signal: options.signal,
    });
    return answer.data;
  }

  /** Opens `port`'s preview URL to anyone, with no credentials (previews are private by default). */
  makePortPublic(port: number, options: RequestOptions = {}): Promise<PortSettings> {
    return this.#transport.json<PortSettings>({
      method: 'PUT',
      path: this.#path(`/ports/${port}/public`),
      signal: options.signal,
    });
  }

  /** Makes `port`'s preview private again. */
  async makePortPrivate(port: number, options: RequestOptions = {}): Promise<void> {
    await this.#transport.empty({
      method: 'DELETE',
      path: this.#path(`/ports/${port}/public`),
      signal: options.signal,
    });
  }

  /** Lets visitors into `port`'s preview with `password` (at least 8 characters; stored hashed). */
  protectPort(port: number, password: string, options: RequestOptions = {}): Promise<PortSettings> {
    return this.#post(`/ports/${port}/protect`, { password }, options);
  }

  /** Removes `port`'s password. */
  async unprotectPort(port: number, options: RequestOptions = {}): Promise<void> {
    await this.#transport.empty({
      method: 'DELETE',
      path: this.#path(`/ports/${port}/protect`),
      signal: options.signal,
    });
  }

  /**
   * A tunnel token: `{kind: 'ssh'}` (answer's `command`: `ssh -p 2222 <token>@host`),
   * `{kind: 'shell'}` (a terminal WebSocket `url`) or `{kind: 'port', port}` (a preview `url`).
   */
  tunnel(params: TunnelParams, options: RequestOptions = {}): Promise<Tunnel> {
    return this.#post('/tunnel', params, options);
  }

  /** A token for `port`'s preview URL: open the answer's `url` (or send `X-Corral-Token: token`). */
  portForward(port: number, options: TokenOptions = {}): Promise<PortForward> {
    return this.#post('/port-forward', { port, ttl_seconds: options.ttlSeconds }, options);
  }

  /** A read-only terminal token: sees one session (or the newest) live, cannot type. */
  observe(options: TokenOptions & { sessionId?: string } = {}): Promise<ObserverToken> {
    return this.#post(
      '/observe',
      { session_id: options.sessionId, ttl_seconds: options.ttlSeconds },
      options,
    );
  }

  /** The sandbox's tunnel, observe and port-forward tokens, newest first (never the secrets). */
  async tokens(options: RequestOptions = {}): Promise<SandboxToken[]> {
    const answer = await this.#transport.json<{ data: SandboxToken[] }>({
      method: 'GET',
      path: this.#path('/tokens'),
      signal: options.signal,
    });
    return answer.data;
  }

  /** Revokes a token: refused from its next use on; the terminals, SSH sessions and preview WebSockets it opened are closed. */
  async revokeToken(tokenId: string, options: RequestOptions = {}): Promise<void> {
    await this.#transport.empty({
      method: 'DELETE',
      path: this.#path(`/tokens/${encodeURIComponent(tokenId)}`),
      signal: options.signal,
    });
  }
}
