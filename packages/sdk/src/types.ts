import type { paths } from './generated/openapi.generated.js';

/*
 * The API's objects, named. Every type here is picked out of the generated OpenAPI types (the
 * server's schemas are the one source); none is written by hand. Fields stay snake_case, as
 * the API sends them.
 */

type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type BodyOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: infer R;
}
  ? JsonOf<NonNullable<R>>
  : never;
type QueryOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;
type ResponseOf<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: infer R;
}
  ? S extends keyof R
    ? JsonOf<R[S]>
    : never
  : never;

/** A sandbox as the API shows it (`GET /v1/sandboxes/{id}`). */
export type SandboxInfo = ResponseOf<'/v1/sandboxes/{id}', 'get', 200>;
/** A sandbox's status. */
export type SandboxStatus = SandboxInfo['status'];
/** The body of `POST /v1/sandboxes` (every field optional). */
export type CreateSandboxParams = BodyOf<'/v1/sandboxes', 'post'>;
/** The body of `PATCH /v1/sandboxes/{id}`. */
export type UpdateSandboxParams = BodyOf<'/v1/sandboxes/{id}', 'patch'>;
/** The query of `GET /v1/sandboxes` (without `metadata[…]`, which the SDK adds). */
export type ListSandboxesQuery = QueryOf<'/v1/sandboxes', 'get'>;
/** The body of `POST /v1/sandboxes/{id}/exec`. */
export type ExecParams = BodyOf<'/v1/sandboxes/{id}/exec', 'post'>;
/** The synchronous answer of an exec, as the API sends it. */
export type ExecResponse = ResponseOf<'/v1/sandboxes/{id}/exec', 'post', 200>;
/** A process started through the API that is still running. */
export type ProcessInfo = ResponseOf<'/v1/sandboxes/{id}/processes', 'get', 200>['data'][number];
/** A signal the API can send to a process. */
export type ProcessSignal = NonNullable<
  BodyOf<'/v1/sandboxes/{id}/processes/{pid}/signal', 'post'>['signal']
>;
/** One entry of a directory listing. */
export type FileInfo = ResponseOf<'/v1/sandboxes/{id}/files', 'get', 200>['data'][number];
/** The answer of a file write: its absolute path and size. */
export type WrittenFile = ResponseOf<'/v1/sandboxes/{id}/files/content', 'put', 201>;
/** `git diff` of a repository, one entry per file (`format=json`). */
export type GitDiff = ResponseOf<'/v1/sandboxes/{id}/git/diff', 'get', 200>;
/** A snapshot. */
export type SnapshotInfo = ResponseOf<'/v1/snapshots/{id}', 'get', 200>;
/** The body of `POST /v1/sandboxes/{id}/snapshots`. */
export type CreateSnapshotParams = BodyOf<'/v1/sandboxes/{id}/snapshots', 'post'>;
/** A signed, time-limited snapshot download URL. */
export type SnapshotDownload = ResponseOf<'/v1/snapshots/{id}/download', 'get', 200>;
/** A template (built in or custom); `log` only on `get`. */
export type TemplateInfo = ResponseOf<'/v1/templates/{id}', 'get', 200>;
/** The JSON body of `POST /v1/templates` (a Debian build). */
export type CreateTemplateParams = BodyOf<'/v1/templates', 'post'>;
/** One audit event of a sandbox. */
export type SandboxEvent = ResponseOf<'/v1/sandboxes/{id}/events', 'get', 200>['data'][number];
/** A terminal session (a live shell) of a sandbox. */
export type TerminalSessionInfo = ResponseOf<
  '/v1/sandboxes/{id}/terminal/sessions',
  'get',
  200
>['data'][number];
/** An API key as listed (never its secret). */
export type ApiKeyInfo = ResponseOf<'/v1/account/keys', 'get', 200>['data'][number];
/** A key just created: its secret `key` is shown this once. */
export type CreatedApiKey = ResponseOf<'/v1/account/keys', 'post', 201>;
/** The body of `POST /v1/account/keys`. */
export type CreateApiKeyParams = BodyOf<'/v1/account/keys', 'post'>;
/** Who the caller is: the user, their workspaces and roles, and how they authenticated. */
export type Me = ResponseOf<'/v1/auth/me', 'get', 200>;
/** The API's error body. */
export type ErrorBody = {
  error: { code: string; message: string; details: Record<string, unknown> };
  request_id: string;
};
/** The answer of `POST /v1/auth/token`. */
export type TokenResponse = ResponseOf<'/v1/auth/token', 'post', 200>;

/** Per-call options every SDK method takes. */
export interface RequestOptions {
  /** Cancels the call (and, for exec, kills the command). */
  signal?: AbortSignal;
}
