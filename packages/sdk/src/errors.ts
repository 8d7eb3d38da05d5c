/*
 * Every failure the SDK throws is a CorralError. The API's error code picks the class, in one
 * place (`errorFromResponse`); codes this version does not know stay plain CorralErrors with
 * their code, so a newer server never breaks an older SDK.
 */

/** What every Corral error carries. */
export interface CorralErrorInit {
  /** The API's error code (`SANDBOX_NOT_FOUND` …), or `CONNECTION_ERROR` / `HTTP_<status>`. */
  code: string;
  /** The HTTP status; 0 when no answer came (connection failure). */
  status: number;
  /** The error's details from the API (always an object). */
  details?: Record<string, unknown>;
  /** The request id the server answered with (`X-Request-Id`), for support and logs. */
  requestId?: string | null;
  cause?: unknown;
}

/** The base class of every error the SDK throws (except `AbortError` when you abort a call). */
export class CorralError extends Error {
  override name = 'CorralError';
  /** The API's error code (`SANDBOX_NOT_FOUND` …), or `CONNECTION_ERROR` / `HTTP_<status>`. */
  readonly code: string;
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  /** The error's details from the API. */
  readonly details: Record<string, unknown>;
  /** The server's request id, when it answered. */
  readonly requestId: string | null;
  constructor(message: string, init: CorralErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.details = init.details ?? {};
    this.requestId = init.requestId ?? null;
  }
}

/** 400 `VALIDATION_ERROR`: the request did not match the schema (`details.fields` says where). */
export class ValidationError extends CorralError {
  override name = 'ValidationError';
}
/** 400 `BAD_REQUEST`: the request was well formed but cannot be done (e.g. a directory read as a file). */
export class BadRequestError extends CorralError {
  override name = 'BadRequestError';
}
/** 401 `UNAUTHORIZED`: no valid API key or token. */
export class UnauthorizedError extends CorralError {
  override name = 'UnauthorizedError';
}
/** 403 `FORBIDDEN`: the key lacks a scope or the user a role. */
export class ForbiddenError extends CorralError {
  override name = 'ForbiddenError';
}
/** 403 `PLAN_LIMIT`: the workspace's plan does not allow this (more sandboxes, more memory …). */
export class PlanLimitError extends CorralError {
  override name = 'PlanLimitError';
}
/** 404: any `*_NOT_FOUND` code; the subclasses below name the common ones. */
export class NotFoundError extends CorralError {
  override name = 'NotFoundError';
}
/** 404 `SANDBOX_NOT_FOUND` (also: another workspace's sandbox). */
export class SandboxNotFoundError extends NotFoundError {
  override name = 'SandboxNotFoundError';
}
/** 404 `SNAPSHOT_NOT_FOUND`. */
export class SnapshotNotFoundError extends NotFoundError {
  override name = 'SnapshotNotFoundError';
}
/** 404 `TEMPLATE_NOT_FOUND`. */
export class TemplateNotFoundError extends NotFoundError {
  override name = 'TemplateNotFoundError';
}
/** 404 `FILE_NOT_FOUND`: no such file or directory in the sandbox. */
export class FileNotFoundError extends NotFoundError {
  override name = 'FileNotFoundError';
}
/** 404 `PROCESS_NOT_FOUND`. */
export class ProcessNotFoundError extends NotFoundError {
  override name = 'ProcessNotFoundError';
}
/** 409 `CONFLICT`: the request conflicts with what exists (a name taken, a non-empty directory …). */
export class ConflictError extends CorralError {
  override name = 'ConflictError';
}
/** 409 `INVALID_STATE`: the sandbox's status does not allow this (exec on a stopped sandbox …). */
export class InvalidStateError extends ConflictError {
  override name = 'InvalidStateError';
}
/** 413 `PAYLOAD_TOO_LARGE`. */
export class PayloadTooLargeError extends CorralError {
  override name = 'PayloadTooLargeError';
}
/** 429 `RATE_LIMITED`, after the SDK's retries ran out. */
export class RateLimitError extends CorralError {
  override name = 'RateLimitError';
  /** Seconds to wait before trying again (from `Retry-After`), or null when not given. */
  readonly retryAfter: number | null;
  constructor(message: string, init: CorralErrorInit & { retryAfter?: number | null }) {
    super(message, init);
    this.retryAfter = init.retryAfter ?? null;
  }
}
/** 500 `INTERNAL`: a failure on the server's side. */
export class InternalServerError extends CorralError {
  override name = 'InternalServerError';
}
/** 502 `SANDBOX_UNAVAILABLE`: the sandbox could not be reached. */
export class SandboxUnavailableError extends CorralError {
  override name = 'SandboxUnavailableError';
}
/** 503 `CAPACITY_EXHAUSTED`: the server is out of capacity or shutting down (retried first). */
export class CapacityExhaustedError extends CorralError {
  override name = 'CapacityExhaustedError';
}
/** No answer: the connection failed (refused, reset, DNS …), after the SDK's retries. */
export class ConnectionError extends CorralError {
  override name = 'ConnectionError';
}

type ErrorClass = new (message: string, init: CorralErrorInit) => CorralError;

/** The one mapping from an API error code to its class. */
const ERROR_CLASSES: Record<string, ErrorClass> = {
  VALIDATION_ERROR: ValidationError,
  BAD_REQUEST: BadRequestError,
  UNSUPPORTED_MEDIA_TYPE: BadRequestError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  PLAN_LIMIT: PlanLimitError,
  NOT_FOUND: NotFoundError,
  SANDBOX_NOT_FOUND: SandboxNotFoundError,
  SNAPSHOT_NOT_FOUND: SnapshotNotFoundError,
  TEMPLATE_NOT_FOUND: TemplateNotFoundError,
  FILE_NOT_FOUND: FileNotFoundError,
  PROCESS_NOT_FOUND: ProcessNotFoundError,
  CONFLICT: ConflictError,
  INVALID_STATE: InvalidStateError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  RATE_LIMITED: RateLimitError,
  INTERNAL: InternalServerError,
  SANDBOX_UNAVAILABLE: SandboxUnavailableError,
  CAPACITY_EXHAUSTED: CapacityExhaustedError,
};

/** The class for `code` (any other `*_NOT_FOUND` is a NotFoundError; unknown codes a CorralError). */
export function errorClassFor(code: string): ErrorClass {
  return ERROR_CLASSES[code] ?? (code.endsWith('_NOT_FOUND') ? NotFoundError : CorralError);
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}

/**
 * The typed error for a non-2xx answer: the API's error shape when the body has it, else a
 * CorralError with code `HTTP_<status>` and the body's start as its message.
 */
export function errorFromResponse(status: number, headers: Headers, bodyText: string): CorralError {
  const requestId = headers.get('x-request-id');
  let code = `HTTP_${status}`;
  let message = `HTTP ${status}${bodyText ? `: ${bodyText.slice(0, 200)}` : ''}`;
  let details: Record<string, unknown> = {};
  let bodyRequestId: string | null = null;
  try {
    const body = JSON.parse(bodyText) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const error = body?.error;
    if (error && typeof error.code === 'string') {
      code = error.code;
      if (typeof error.message === 'string') message = error.message;
      if (error.details && typeof error.details === 'object')
        details = error.details as Record<string, unknown>;
      const rid = (body as { request_id?: unknown }).request_id;
      if (typeof rid === 'string') bodyRequestId = rid;
    }
  } catch {
    // not JSON: keep the HTTP_<status> error
  }
  const init = { code, status, details, requestId: requestId ?? bodyRequestId };
  if (code === 'RATE_LIMITED' || status === 429) {
    const fromDetails = typeof details.retry_after_seconds === 'number' ? details.retry_after_seconds : null;
    return new RateLimitError(message, {
      ...init,
      retryAfter: parseRetryAfter(headers.get('retry-after')) ?? fromDetails,
    });
  }
  const ErrorType = errorClassFor(code);
  return new ErrorType(message, init);
}

/** The error for an `error` event inside an exec stream (the same shape as an error body). */
export function errorFromBody(
  status: number,
  body: { error: { code: string; message: string; details: Record<string, unknown> }; request_id?: string },
): CorralError {
  const ErrorType = errorClassFor(body.error.code);
  return new ErrorType(body.error.message, {
    code: body.error.code,
    status,
    details: body.error.details ?? {},
    requestId: body.request_id ?? null,
  });
}
