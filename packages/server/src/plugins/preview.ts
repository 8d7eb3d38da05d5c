import type { App } from '../app.js';
import { PreviewProxy } from '../services/preview/handler.js';

/**
 * The preview proxy: requests whose Host is `{port}-{sandbox_id}.{preview_domain}` (the
 * `oc-{id}` alias → 4096, `claw-{id}` → 18789; host lowercased, `:port` ignored) are answered by
 * that port inside the sandbox, through `app.frontDoor` — HTTP and WebSocket, streamed both ways.
 * Any other Host goes to the API unchanged.
 *
 * Access (first match wins; an explicit credential that is bad is refused, never skipped):
 * - the port is public (`PUT /v1/sandboxes/{id}/ports/{port}/public`): anyone;
 * - `?corral_token=crl_tk_…` (a `port` token for this sandbox and port, e.g. from
 *   `POST …/port-forward`): on GET/HEAD answers **302** to the same URL without the parameter
 *   and sets the cookie; on other methods and WebSocket upgrades it is accepted as is (and
 *   removed before forwarding). A bad/expired/revoked/other-port/other-sandbox token: **401**;
 * - header `X-Corral-Token: crl_tk_…` (same token, no cookie): bad → **401**;
 * - `Authorization: Bearer <API key or Corral JWT>` of a caller with role ≥ developer in the
 *   sandbox's workspace and scope `sandbox:exec`. Unknown/revoked `crl_sk_` key → **401**;
 *   another workspace's key → **404 SANDBOX_NOT_FOUND**; viewer → **403 FORBIDDEN**
 *   `{required_role: developer}`; missing scope → **403** `{required_scope: sandbox:exec}`.
 *   A Bearer JWT Corral did not sign is the app's own and is forwarded untouched;
 * - cookie **`corral_preview`** (host-only, `Path=/`, HttpOnly, SameSite=Lax, Secure when the
 *   public URL is https): value `{credential}.{expires}.{HMAC}`, HMAC (UrlSigner from the JWT
 *   secret) binding sandbox, port, credential and expiry; the credential is the token id
 *   (its row is re-checked at most every 5 s, so revoking the token ends its cookies) or a
 *   fingerprint of the port's password hash (changing/removing the password ends them);
 * - a protected port's password: `Authorization: Basic` (any user name), or the HTML form
 *   (browsers — `Accept: text/html` — get **401** with a password page) posting `password`
 *   and `next` as `application/x-www-form-urlencoded` to the reserved path **`/__corral/auth`** → **303**
 *   to `next` with the cookie (12 h). Wrong password → **401** (`reason: wrong_password`);
 *   attempts are throttled on `app.rateLimitStore` (Redis when configured: shared by every
 *   replica): 5 unknown passwords per (sandbox, port, client IP) in a sliding minute, then
 *   **429 RATE_LIMITED** with `Retry-After` — right or wrong — until the oldest leaves the
 *   window. A password this server found right lately (10 min) passes without using the
 *   budget, so `Basic` on every request is fine. Store down → **503 CAPACITY_EXHAUSTED**.
 * Otherwise **401 UNAUTHORIZED** in the error shape (`WWW-Authenticate: Basic` on protected
 * ports), or for browsers (`Accept: text/html`) an HTML page saying how to get access.
 *
 * Caching: a Bearer key/JWT and an `X-Corral-Token` are checked at most every 5 s, and so are
 * a port's settings; this server's own changes apply at once (port settings by themselves,
 * revocations through `invalidatePreviewAccess`), other servers' within those 5 s.
 *
 * Timeout: an app that accepts the connection but sends no response head (or WebSocket
 * handshake answer) within `CORRAL_PREVIEW_TIMEOUT_SECONDS` (default 300; 0 = none) of the
 * request being sent → **502 SANDBOX_UNAVAILABLE** `{reason: "timeout", timeout_seconds}`.
 * Streamed answers and open WebSockets are never cut by it.
 *
 * Other answers: unknown/deleted sandbox → **404 SANDBOX_NOT_FOUND** (even without
 * credentials); sandbox not running → **502 SANDBOX_UNAVAILABLE** `{status, reason:
 * "not_running"}` (after the access check); nothing listening → **502 SANDBOX_UNAVAILABLE**
 * `{reason: "not_listening"}` (and `"connection_failed"` when the server dropped the connection
 * before answering). Connections into the sandbox are kept alive between requests (4 s idle).
 * The request target is forwarded as sent (only `corral_token` removed). Forwarded requests
 * lose Corral's credentials (the `corral_preview` cookie, `X-Corral-Token`, `corral_token`, a
 * Corral `Authorization`, the `Basic` password of a protected port) and get
 * `X-Forwarded-For/-Proto/-Host`; the Host header is kept. A proxied exchange is activity for the
 * idle timeout while it is open (WebSockets and streams with no traffic included: touched every
 * 30 s, or a third of a shorter idle timeout); metric `corral_preview_requests_total{kind, status}`; one log line per request.
 */
export function registerPreviewProxy(app: App): void {
  const proxy = new PreviewProxy(app);
  proxies.set(app, proxy);
  app.frontDoor.use(proxy);
  app.addHook('onClose', async () => proxy.close());
}

const proxies = new WeakMap<App, PreviewProxy>();

/** The preview proxy of `app` (tests shorten its `headersTimeoutMs`). */
export function previewProxyOf(app: App): PreviewProxy | undefined {
  return proxies.get(app);
}

/**
 * Makes this server's preview proxy forget what it cached about access: about one sandbox
 * (after its tokens are revoked), or every credential when no sandbox is named (after an API
 * key is revoked, a member's role changes or a member is removed). Other servers catch up
 * within 5 s. Port settings changes need no call (`updatePortSettings` tells the proxy).
 */
export function invalidatePreviewAccess(app: App, sandboxId?: string): void {
  const proxy = proxies.get(app);
  if (!proxy) return;
  if (sandboxId === undefined) proxy.invalidateCredentials();
  else proxy.invalidateSandbox(sandboxId);
}
