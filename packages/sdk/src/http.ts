import { TokenSource } from './auth.js';
import { ConnectionError, CorralError, errorFromResponse, parseRetryAfter } from './errors.js';
import { backoffDelayMs, IDEMPOTENT_METHODS, RETRYABLE_STATUSES, type RetryPolicy, sleep } from './retry.js';
import type { TokenResponse } from './types.js';

/** A query string's values; undefined ones are left out. */
export type QueryValues = Record<string, string | number | boolean | undefined | null>;

/** What a retry looked like, for `onRetry` (logging, metrics). */
export interface RetryInfo {
  method: string;
  path: string;
  /** 1 for the first retry. */
  attempt: number;
  /** How long the SDK waits before sending again. */
  delayMs: number;
  /** The status that caused the retry, or null for a connection failure. */
  status: number | null;
  /** The connection error, when there was no answer. */
  error: unknown;
}

/** One request as the client layer describes it. */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: QueryValues;
  /** A JSON body (sent with `Content-Type: application/json`). */
  json?: unknown;
  /** A raw body; a ReadableStream is sent streaming and is never retried. */
  body?: string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** False for the public token route. */
  auth?: boolean;
}

/** What the transport needs. */
export interface TransportOptions {
  baseUrl: string;
  apiKey: string | null;
  fetch: typeof fetch;
  retry: RetryPolicy;
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError');
}

/**
 * Sends requests: the base URL, the JWT (exchanged from the API key and refreshed), retries
 * with backoff for 429/503 and for idempotent requests that lost their connection, one fresh
 * token after a 401, and every non-2xx answer turned into its typed error.
 */
export class Transport {
  readonly baseUrl: string;
  private readonly tokens: TokenSource | null;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.tokens = options.apiKey
      ? new TokenSource(options.apiKey, (apiKey, signal) =>
          this.json<TokenResponse>({
            method: 'POST',
            path: '/v1/auth/token',
            json: { api_key: apiKey },
            auth: false,
            signal,
          }),
        )
      : null;
  }

  /** The absolute URL of `path` with `query`. */
  url(path: string, query?: QueryValues): string {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /** The `Authorization` header value for a request now (exchanging or refreshing the token). */
  async authorization(signal?: AbortSignal): Promise<string> {
    if (!this.tokens) {
      throw new CorralError('No API key: pass `apiKey` to new Corral() or set CORRAL_API_KEY', {
        code: 'UNAUTHORIZED',
        status: 0,
      });
    }
    return `Bearer ${await this.tokens.token(signal)}`;
  }

  /** Sends `request` and answers the 2xx Response (body unread); throws the typed error otherwise. */
  async send(request: HttpRequest): Promise<Response> {
    const { method, signal } = request;
    const streaming = request.body instanceof ReadableStream;
    const replayable = !streaming;
    const idempotent = IDEMPOTENT_METHODS.has(method);
    const headers: Record<string, string> = { ...request.headers };
    let body: RequestInit['body'] = request.body as RequestInit['body'];
    if (request.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.json);
    }
    const url = this.url(request.path, request.query);
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      let token: string | null = null;
      if (request.auth !== false) {
        const authorization = await this.authorization(signal);
        token = authorization.slice('Bearer '.length);
        headers.authorization = authorization;
      }
      let res: Response;
      try {
        const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: signal ?? null };
        if (body !== undefined) init.body = body;
        if (streaming) init.duplex = 'half';
        res = await this.options.fetch(url, init);
      } catch (err) {
        if (isAbort(err, signal)) throw signal?.reason ?? err;
        if (replayable && idempotent && attempt < this.options.retry.maxRetries) {
          await this.wait(request, attempt + 1, null, null, err);
          continue;
        }
        throw new ConnectionError(`${method} ${url} failed: ${(err as Error).message ?? err}`, {
          code: 'CONNECTION_ERROR',
          status: 0,
          cause: err,
        });
      }
      if (res.ok) return res;
      if (res.status === 401 && token && this.tokens && !refreshed && replayable) {
        // The token may have expired in flight (clock skew, a long upload): one fresh one.
        refreshed = true;
        this.tokens.invalidate(token);
        await res.body?.cancel();
        attempt--;
        continue;
      }
      if (RETRYABLE_STATUSES.has(res.status) && replayable && attempt < this.options.retry.maxRetries) {
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        if (retryAfter === null || retryAfter * 1000 <= this.options.retry.maxRetryAfterMs) {
          await res.body?.cancel();
          await this.wait(request, attempt + 1, res.status, retryAfter, null);
          continue;
        }
      }
      throw errorFromResponse(res.status, res.headers, await res.text().catch(() => ''));
    }
  }

  /** Sends and parses a JSON answer. */
  async json<T>(request: HttpRequest): Promise<T> {
    const res = await this.send({ ...request, headers: { accept: 'application/json', ...request.headers } });
    return (await res.json()) as T;
  }

  /** Sends and discards the answer's body (204s). */
  async empty(request: HttpRequest): Promise<void> {
    const res = await this.send(request);
    await res.body?.cancel();
  }

  private async wait(
    request: HttpRequest,
    attempt: number,
    status: number | null,
    retryAfter: number | null,
    error: unknown,
  ): Promise<void> {
    const delayMs = backoffDelayMs(this.options.retry, attempt, retryAfter);
    this.options.onRetry?.({ method: request.method, path: request.path, attempt, delayMs, status, error });
    await sleep(delayMs, request.signal);
  }
}
