import type { paths } from './generated/openapi.generated.js';
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

type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type SshKeyPaths = paths['/v1/account/ssh-keys'];

/** An SSH public key of yours as the API shows it (algorithm, `SHA256:…` fingerprint, dates). */
export type SshKeyInfo = Json<SshKeyPaths['get']['responses'][200]>['data'][number];
/** The body of `POST /v1/account/ssh-keys`. */
type SshKeyBody = Json<SshKeyPaths['post']['requestBody']>;
/** What `corral.sshKeys.add()` takes: the `.pub` line, and a name (default: the key's comment). */
export type AddSshKeyParams = Omit<SshKeyBody, 'name'> & Partial<Pick<SshKeyBody, 'name'>>;

/** The name a key gets when none is given: its comment (`user@host`), else its algorithm. */
export function defaultSshKeyName(publicKey: string): string {
  const [algorithm, , ...comment] = publicKey.trim().split(/\s+/);
  return comment.join(' ').slice(0, 200) || algorithm || 'ssh key';
}

/**
 * `corral.sshKeys`: your SSH public keys. A registered key logs you in to the SSH gateway as
 * `ssh <sandbox id>@host` in every sandbox where you are developer or more (no token needed).
 * Adding and removing need a key with the full `*` scope; listing needs only to be you.
 */
export class SshKeys {
  constructor(private readonly transport: Transport) {}

  /** Your keys, oldest first (never more than a user has, so one answer, no pages). */
  async list(options: RequestOptions = {}): Promise<SshKeyInfo[]> {
    const answer = await this.transport.json<{ data: SshKeyInfo[] }>({
      method: 'GET',
      path: '/v1/account/ssh-keys',
      signal: options.signal,
    });
    return answer.data;
  }

  /** Registers an OpenSSH public key (one `.pub` line); the server checks it and answers 400 when it is not one. */
  async add(params: AddSshKeyParams, options: RequestOptions = {}): Promise<SshKeyInfo> {
    const publicKey = params.public_key.trim();
    return this.transport.json<SshKeyInfo>({
      method: 'POST',
      path: '/v1/account/ssh-keys',
      json: { name: params.name ?? defaultSshKeyName(publicKey), public_key: publicKey },
      signal: options.signal,
    });
  }

  /** Removes a key by id: it no longer logs in (a key you do not have is NOT_FOUND). */
  async remove(id: string, options: RequestOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: `/v1/account/ssh-keys/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
  }
}
