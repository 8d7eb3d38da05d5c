import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter } from 'prom-client';
import type { App } from '../../app.js';
import { type ApiError, apiError, toApiError } from '../../errors.js';
import type { FrontDoorHandler } from '../../front-door.js';
import { requestIdFor } from '../../plugins/request-id.js';
import type { SandboxRow } from '../../store/schema.js';
import { UrlSigner } from '../signed-urls.js';
import { type AccessRequest, type Allowed, type Denied, PreviewAccess } from './access.js';
import {
  encodePreviewCookie,
  PASSWORD_COOKIE_TTL_SECONDS,
  passwordCredential,
  previewSetCookie,
} from './cookie.js';
import { readPasswordForm } from './form.js';
import { previewForwardHeaders } from './headers.js';
import { type PreviewTarget, parsePreviewHost, pathWithoutToken } from './host.js';
import { AUTH_PATH, passwordPage, privatePage, safeNext, wantsHtml } from './page.js';
import { UpstreamPool } from './pool.js';
import { forwardHttp, forwardUpgrade, UpstreamTimeout } from './proxy.js';
import { refuseUpgrade, sendError, sendHtml, sendRedirect } from './respond.js';
import { PortSettingsCache } from './settings-cache.js';
import { PasswordThrottle } from './throttle.js';
import { activityIntervalMs } from './timing.js';

/** 502 SANDBOX_UNAVAILABLE `{status, reason: not_running}` unless the sandbox is running. */
function requireRunning(row: SandboxRow, port: number): void {
  if (row.status !== 'running') {
    throw apiError('SANDBOX_UNAVAILABLE', { id: row.id, port, status: row.status, reason: 'not_running' });
  }
}

/** One claimed request, resolved: its sandbox, port settings and parsed URL. */
interface Claimed extends AccessRequest {
  requestId: string;
}

/**
 * The preview proxy as a front-door handler: claims requests and upgrades whose Host is a
 * preview host, checks access, and streams them to the port inside the sandbox.
 */
export class PreviewProxy implements FrontDoorHandler {
  readonly #app: App;
  readonly #access: PreviewAccess;
  readonly #signer: UrlSigner;
  readonly #secure: boolean;
  readonly #requests: Counter<'kind' | 'status'>;
  readonly #pool = new UpstreamPool();
  readonly #settings: PortSettingsCache;
  /**
   * How long the app inside may take to start answering (response head, or a WebSocket
   * handshake) before the client gets 502 SANDBOX_UNAVAILABLE `{reason: timeout}`; 0 = no limit.
   */
  headersTimeoutMs: number;

  constructor(app: App) {
    this.#app = app;
    this.headersTimeoutMs = app.config.previewTimeoutSeconds * 1000;
    this.#settings = new PortSettingsCache(app.store.db, (sandboxId) =>
      this.#access.forgetSandbox(sandboxId),
    );
    this.#signer = UrlSigner.fromSecret(app.config.jwtSecret);
    this.#secure = app.config.publicUrl.startsWith('https:');
    this.#access = new PreviewAccess({
      config: app.config,
      store: app.store,
      tokens: app.sandboxTokens,
      signer: this.#signer,
      throttle: new PasswordThrottle(app.rateLimitStore),
      jwtSecret: new TextEncoder().encode(app.config.jwtSecret),
    });
    this.#requests = new Counter({
      name: 'corral_preview_requests_total',
      help: 'Requests to preview hosts, by kind (http, ws) and answer status.',
      labelNames: ['kind', 'status'],
      registers: [app.metrics.registry],
    });
  }

  request(req: IncomingMessage, res: ServerResponse): boolean {
    const target = parsePreviewHost(req.headers.host, this.#app.config.previewDomain);
    if (!target) return false;
    const requestId = requestIdFor(req);
    this.#handleRequest(req, res, target, requestId).catch((err: unknown) => {
      const error = toApiError(err);
      if (error.status >= 500) this.#app.log.error({ err, request_id: requestId }, 'preview request failed');
      this.#count('http', error.status);
      sendError(res, error, requestId);
    });
    return true;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = parsePreviewHost(req.headers.host, this.#app.config.previewDomain);
    if (!target) return false;
    const requestId = requestIdFor(req);
    socket.on('error', () => socket.destroy());
    this.#handleUpgrade(req, socket, head, target, requestId).catch((err: unknown) => {
      const error = toApiError(err);
      if (error.status >= 500) this.#app.log.error({ err, request_id: requestId }, 'preview upgrade failed');
      this.#count('ws', error.status);
      refuseUpgrade(socket, error, requestId);
    });
    return true;
  }

  async #claim(req: IncomingMessage, target: PreviewTarget, requestId: string): Promise<Claimed> {
    // Both reads at once (settings of an unknown sandbox are simply not used). The row is read
    // every time: its status must be current (a paused sandbox answers 502 at once).
    const [row, settings] = await Promise.all([
      this.#app.sandboxes.find(target.sandboxId),
      this.#settings.get(target.sandboxId, target.port),
    ]);
    if (!row) throw apiError('SANDBOX_NOT_FOUND', { id: target.sandboxId });
    const url = new URL(req.url ?? '/', 'http://preview.invalid');
    return { req, url, row, port: target.port, settings, clientIp: this.#clientIp(req), requestId };
  }

  async #handleRequest(req: IncomingMessage, res: ServerResponse, target: PreviewTarget, requestId: string) {
    const started = performance.now();
    const claimed = await this.#claim(req, target, requestId);
    if (claimed.url.pathname === AUTH_PATH) return this.#passwordForm(claimed, res);
    const decision = await this.#access.check(claimed);
    if (decision.kind === 'deny') return this.#deny(claimed, res, decision);
    if (decision.token && (req.method === 'GET' || req.method === 'HEAD')) {
      // Exchange the link's token for a cookie, and drop it from the address bar.
      const expires = Math.floor(Date.parse(decision.token.expiresAt) / 1000);
      const value = encodePreviewCookie(this.#signer, {
        sandboxId: claimed.row.id,
        port: claimed.port,
        credential: decision.token.id,
        expires,
      });
      req.resume();
      this.#count('http', 302);
      return sendRedirect(res, 302, pathWithoutToken(claimed.req.url), requestId, {
        'set-cookie': previewSetCookie(value, expires, this.#secure),
      });
    }
    const stop = this.#keepActive(claimed.row);
    let status: number;
    try {
      status = await this.#forward(claimed, res, decision);
    } finally {
      stop();
    }
    this.#count('http', status);
    this.#app.log.info(
      {
        request_id: requestId,
        sandbox_id: claimed.row.id,
        port: claimed.port,
        method: req.method,
        path: claimed.url.pathname,
        status,
        via: decision.via,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
      },
      'preview request',
    );
  }

  async #handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: PreviewTarget,
    requestId: string,
  ) {
    const claimed = await this.#claim(req, target, requestId);
    const decision = await this.#access.check(claimed);
    if (decision.kind === 'deny') {
      this.#count('ws', decision.error.status);
      return refuseUpgrade(socket, decision.error, requestId, decision.headers ?? {});
    }
    requireRunning(claimed.row, claimed.port);
    // The Bearer caller, tracked below: the connection ends with its key or role.
    const caller = decision.via === 'bearer' ? (decision.auth ?? null) : null;
    const upstream = await this.#connect(claimed.row, claimed.port);
    upstream.on('error', () => {});
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    const stop = this.#keepActive(claimed.row);
    socket.once('close', stop);
    forwardUpgrade(
      req,
      socket,
      head,
      upstream,
      pathWithoutToken(claimed.req.url),
      this.#headers(claimed, decision),
      {
        headersTimeoutMs: this.headersTimeoutMs,
        onAnswer: () => this.#count('ws', 101),
        onTimeout: () => {
          this.#count('ws', 502);
          refuseUpgrade(socket, this.#timeoutError(claimed), requestId);
        },
      },
    );
    if (decision.portToken) {
      // A WebSocket opened with a port token ends when the token does (revoked, expired, no
      // longer valid). Destroyed, not closed with a frame: one may be half-forwarded.
      const untrack = this.#app.tokenConnections.track(decision.portToken, () => {
        upstream.destroy();
        socket.destroy();
      });
      socket.once('close', untrack);
    }
    if (caller) {
      // A WebSocket opened with a Corral key or JWT ends when the key is revoked or expires, or
      // its user is no longer a developer there (not at the JWT's own exp: see trackCaller).
      const tracked = { auth: caller, sandboxId: claimed.row.id, minRole: 'developer' as const };
      const untrack = this.#app.tokenConnections.trackCaller(tracked, () => {
        upstream.destroy();
        socket.destroy();
      });
      socket.once('close', untrack);
    }
    this.#app.log.info(
      {
        request_id: requestId,
        sandbox_id: claimed.row.id,
        port: claimed.port,
        path: claimed.url.pathname,
        via: decision.via,
      },
      'preview upgrade',
    );
  }

  /**
   * Streams the request to the port over a kept-alive connection when one is idle. A kept
   * connection the server had closed in the meantime fails before any answer: a request
   * without a body is then sent again on a new connection; otherwise it is 502.
   */
  async #forward(claimed: Claimed, res: ServerResponse, decision: Allowed): Promise<number> {
    const { req, row, port } = claimed;
    const key = `${row.id}:${port}`;
    const path = pathWithoutToken(claimed.req.url);
    const headers = this.#headers(claimed, decision);
    const release = (socket: Duplex) => this.#pool.release(key, socket);
    const bodiless =
      req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) === 0;
    // Checked before a kept connection is taken too: a paused sandbox's server would never answer.
    requireRunning(row, port);
    let upstream = await this.#pool.acquire(key, () => this.#connect(row, port));
    for (;;) {
      try {
        return await forwardHttp(req, res, upstream.socket, path, headers, release, this.headersTimeoutMs);
      } catch (err) {
        if (err instanceof UpstreamTimeout) throw this.#timeoutError(claimed);
        if (!upstream.reused || !bodiless)
          throw apiError('SANDBOX_UNAVAILABLE', { id: row.id, port, reason: 'connection_failed' });
        upstream = await this.#pool.acquire(key, () => this.#connect(row, port));
      }
    }
  }

  /** A new connection to the port: 502 SANDBOX_UNAVAILABLE when the sandbox stopped or nothing listens. */
  async #connect(row: SandboxRow, port: number): Promise<Duplex> {
    try {
      return await this.#app.sandboxes.runtime.connect(row.id, port);
    } catch (err) {
      const error = toApiError(err);
      if (error.status === 500) throw err;
      const reason = error.code === 'INVALID_STATE' ? 'not_running' : 'not_listening';
      throw apiError('SANDBOX_UNAVAILABLE', { id: row.id, port, reason });
    }
  }

  /** The headers to forward: Corral's credentials removed, X-Forwarded-* set. */
  #headers(claimed: Claimed, decision: Allowed) {
    return previewForwardHeaders(claimed.req, decision.stripAuthorization, this.#app.config.trustProxy);
  }

  /** `POST /__corral/auth` (the password form): a cookie and 303 back, or the page again. */
  async #passwordForm(claimed: Claimed, res: ServerResponse): Promise<void> {
    const { req, row, port, settings, requestId } = claimed;
    if (req.method !== 'POST' || settings.passwordHash === null) {
      req.resume();
      this.#count('http', 303);
      return sendRedirect(res, 303, '/', requestId);
    }
    const form = await readPasswordForm(req);
    if (!form || form.password === null) {
      this.#count('http', 400);
      return sendError(res, apiError('VALIDATION_ERROR', { field: 'password' }), requestId);
    }
    const next = safeNext(form.next);
    const refused = await this.#access.checkPassword(claimed, form.password);
    if (refused) return this.#deny(claimed, res, refused, next);
    const expires = Math.floor(Date.now() / 1000) + PASSWORD_COOKIE_TTL_SECONDS;
    const value = encodePreviewCookie(this.#signer, {
      sandboxId: row.id,
      port,
      credential: passwordCredential(settings.passwordHash),
      expires,
    });
    this.#count('http', 303);
    sendRedirect(res, 303, next, requestId, { 'set-cookie': previewSetCookie(value, expires, this.#secure) });
  }

  /** Answers a refusal: the password or private page for browsers, else the error shape. */
  #deny(claimed: Claimed, res: ServerResponse, denied: Denied, next?: string): void {
    const { req, port, requestId } = claimed;
    req.resume();
    const error: ApiError = denied.error;
    this.#count('http', error.status);
    if (wantsHtml(req.headers.accept)) {
      const { 'www-authenticate': _challenge, ...headers } = denied.headers ?? {};
      if (denied.passwordPage) {
        const message =
          error.code === 'RATE_LIMITED'
            ? 'Too many wrong passwords. Wait a minute and try again.'
            : error.details.reason === 'wrong_password'
              ? 'Wrong password.'
              : null;
        const back = next ?? `${claimed.url.pathname}${claimed.url.search}`;
        sendHtml(res, error.status, passwordPage(port, safeNext(back), message), requestId, headers);
        return;
      }
      if (error.code === 'UNAUTHORIZED') {
        sendHtml(res, 401, privatePage(port), requestId, headers);
        return;
      }
    }
    sendError(res, error, requestId, denied.headers ?? {});
  }

  /**
   * Counts an exchange as activity: now, and while it stays open (a WebSocket, a streamed or
   * long-polled answer — traffic or not) every `activityIntervalMs` of the sandbox's idle
   * timeout, so an open browser tab keeps it from pausing. Returns the stop (call on close).
   */
  #keepActive(row: SandboxRow): () => void {
    const id = row.id;
    this.#app.sandboxes.touch(id);
    const timer = setInterval(() => this.#app.sandboxes.touch(id), activityIntervalMs(row));
    timer.unref();
    return () => clearInterval(timer);
  }

  /** 502 SANDBOX_UNAVAILABLE `{reason: timeout}`: the app accepted the connection but did not answer. */
  #timeoutError(claimed: Claimed): ApiError {
    return apiError('SANDBOX_UNAVAILABLE', {
      id: claimed.row.id,
      port: claimed.port,
      reason: 'timeout',
      timeout_seconds: this.headersTimeoutMs / 1000,
    });
  }

  /**
   * Forgets what was cached about `sandboxId` (port settings, token checks): call after its
   * tokens are revoked so they are refused at once here (other servers: within 5 s).
   */
  invalidateSandbox(sandboxId: string): void {
    this.#settings.forget(sandboxId);
    this.#access.forgetSandbox(sandboxId);
  }

  /** Forgets every cached credential check: call after an API key is revoked or a member's role changes. */
  invalidateCredentials(): void {
    this.#access.forgetCredentials();
  }

  /** Closes the idle connections into sandboxes (server shutdown). */
  close(): void {
    this.#settings.close();
    this.#pool.close();
  }

  #clientIp(req: IncomingMessage): string {
    const forwarded = req.headers['x-forwarded-for'];
    if (this.#app.config.trustProxy && typeof forwarded === 'string') {
      return forwarded.split(',')[0]!.trim();
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  #count(kind: 'http' | 'ws', status: number): void {
    this.#requests.inc({ kind, status: String(status) });
  }
}
