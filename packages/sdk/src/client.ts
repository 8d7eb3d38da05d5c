import { ApiKeys, SshKeys } from './account.js';
import { type RetryInfo, Transport } from './http.js';
import { Sandboxes, Snapshots, Templates } from './resources.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
import type { WebSocketLike } from './terminal.js';
import type { Me, RequestOptions } from './types.js';

/** The default server: a local `npm start`. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';

/** Options of `new Corral()`. */
export interface CorralOptions {
  /** An API key (`crl_sk_…`); default `CORRAL_API_KEY` from the environment (Node). */
  apiKey?: string;
  /** The server; default `CORRAL_URL`, else `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** Retries after the first attempt for 429/503 and lost connections (default 2; 0 turns retries off). */
  maxRetries?: number;
  /** Backoff tuning (base and cap of the exponential delay, longest Retry-After honoured). */
  retry?: Partial<Omit<RetryPolicy, 'maxRetries'>>;
  /** Called before each retry (for logs or metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** The WebSocket constructor for `box.terminal()` (default the global one; `@corral/sdk/node` brings `ws`). */
  WebSocket?: WebSocketLike;
  /** The preview domain, used only when the server lists no preview URL to copy (default `localhost`). */
  previewDomain?: string;
}

function environment(name: string): string | undefined {
  // No `node:` import: browsers have no process, Node has it as a global.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.[name];
  return value ? value : undefined;
}

/**
 * The Corral client. `const corral = new Corral()` reads `CORRAL_API_KEY` and `CORRAL_URL`;
 * the key is exchanged for a short-lived token, refreshed on its own.
 *
 * ```ts
 * const box = await corral.sandboxes.create({ template: 'python' });
 * const { stdout } = await box.exec('python3', ['-c', 'print(1)']);
 * await box.destroy();
 * ```
 */
export class Corral {
  /** Create, get and list sandboxes. */
  readonly sandboxes: Sandboxes;
  /** Snapshots by id: get, remove, restore, download. */
  readonly snapshots: Snapshots;
  /** Templates: list, get, create, remove. */
  readonly templates: Templates;
  /** The caller's API keys: list, create, revoke. */
  readonly apiKeys: ApiKeys;
  /** Your SSH public keys: list, add, remove. */
  readonly sshKeys: SshKeys;
  /** The server this client talks to. */
  readonly baseUrl: string;
  private readonly transport: Transport;

  constructor(options: CorralOptions = {}) {
    const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (!fetchImpl) throw new Error('No fetch available: pass `fetch` to new Corral()');
    const transport = new Transport({
      baseUrl: options.baseUrl ?? environment('CORRAL_URL') ?? DEFAULT_BASE_URL,
      apiKey: options.apiKey ?? environment('CORRAL_API_KEY') ?? null,
      fetch: fetchImpl,
      retry: {
        ...DEFAULT_RETRY_POLICY,
        ...options.retry,
        maxRetries: options.maxRetries ?? DEFAULT_RETRY_POLICY.maxRetries,
      },
      onRetry: options.onRetry,
    });
    this.baseUrl = transport.baseUrl;
    this.transport = transport;
    this.apiKeys = new ApiKeys(transport);
    this.sshKeys = new SshKeys(transport);
    const context = {
      transport,
      previewDomain: options.previewDomain ?? 'localhost',
      WebSocket: options.WebSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket,
    };
    this.sandboxes = new Sandboxes(context);
    this.snapshots = new Snapshots(context);
    this.templates = new Templates(context);
  }

  /** Who the key belongs to: the user, their workspaces and roles (checks the key and URL work). */
  async me(options: RequestOptions = {}): Promise<Me> {
    return this.transport.json<Me>({ method: 'GET', path: '/v1/auth/me', signal: options.signal });
  }
}
