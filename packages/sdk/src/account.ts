import type { Transport } from './http.js';
import { fetchPage, type Page } from './page.js';
import type { ListOptions } from './sandbox-parts.js';
import type { ApiKeyInfo, CreateApiKeyParams, CreatedApiKey, RequestOptions } from './types.js';

/** `corral.apiKeys`: the caller's API keys. */
export class ApiKeys {
  constructor(private readonly transport: Transport) {}

  /** The keys (prefix, name, scopes, workspace, dates; never the secret); the page iterates them all. */
  async list(options: ListOptions = {}): Promise<Page<ApiKeyInfo>> {
    return fetchPage(
      (cursor) =>
        this.transport.json<{ data: ApiKeyInfo[]; next_cursor: string | null }>({
          method: 'GET',
          path: '/v1/account/keys',
          query: { limit: options.limit, cursor },
          signal: options.signal,
        }),
      (key) => key,
      options.cursor,
    );
  }

  /** Creates a key; its secret (`key`) is in this answer only. */
  async create(params: CreateApiKeyParams, options: RequestOptions = {}): Promise<CreatedApiKey> {
    return this.transport.json<CreatedApiKey>({
      method: 'POST',
      path: '/v1/account/keys',
      json: params,
      signal: options.signal,
    });
  }

  /** Revokes a key: it fails on its very next request. */
  async revoke(id: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: `/v1/account/keys/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
  }
}
