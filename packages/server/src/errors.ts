import { RuntimeError, type RuntimeErrorCode } from '@corral/runtime';

/**
 * The closed catalogue of API error codes: each with its HTTP status and a message template.
 * `{name}` placeholders in a template are filled from the error's `details`.
 * Tests assert on `code`, never on the message.
 */
export const ERRORS = {
  VALIDATION_ERROR: { status: 400, message: 'The request is invalid' },
  BAD_REQUEST: { status: 400, message: 'The request could not be understood' },
  UNAUTHORIZED: { status: 401, message: 'Authentication is required' },
  FORBIDDEN: { status: 403, message: 'You are not allowed to do this' },
  PLAN_LIMIT: { status: 403, message: "Your plan's limit is reached" },
  NOT_FOUND: { status: 404, message: 'Not found' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No route {method} {url}' },
  USER_NOT_FOUND: { status: 404, message: 'User not found' },
  WORKSPACE_NOT_FOUND: { status: 404, message: 'Workspace not found' },
  MEMBER_NOT_FOUND: { status: 404, message: 'Member not found' },
  KEY_NOT_FOUND: { status: 404, message: 'API key not found' },
  SESSION_NOT_FOUND: { status: 404, message: 'Session not found' },
  SANDBOX_NOT_FOUND: { status: 404, message: 'Sandbox not found' },
  TEMPLATE_NOT_FOUND: { status: 404, message: 'Template not found' },
  SNAPSHOT_NOT_FOUND: { status: 404, message: 'Snapshot not found' },
  FILE_NOT_FOUND: { status: 404, message: 'File not found' },
  PROCESS_NOT_FOUND: { status: 404, message: 'Process not found' },
  PORT_NOT_FOUND: { status: 404, message: 'Port not found' },
  TOKEN_NOT_FOUND: { status: 404, message: 'Token not found' },
  ALERT_NOT_FOUND: { status: 404, message: 'Alert not found' },
  NOTIFICATION_NOT_FOUND: { status: 404, message: 'Notification not found' },
  EVENT_NOT_FOUND: { status: 404, message: 'Event not found' },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state' },
  INVALID_STATE: { status: 409, message: 'The resource is not in a state that allows this' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than {limit_bytes} bytes' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Content-Type {content_type} is not supported here' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  INTERNAL: { status: 500, message: 'Something went wrong on our side' },
  SANDBOX_UNAVAILABLE: { status: 502, message: 'The sandbox could not be reached' },
  CAPACITY_EXHAUSTED: { status: 503, message: 'The service is temporarily unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

/** Every code the API may answer with. */
export type ErrorCode = keyof typeof ERRORS;

/** Details of an error: always a JSON object, safe to show to the caller. */
export type ErrorDetails = Record<string, unknown>;

/** The one error shape of every non-2xx JSON response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetails };
  request_id: string;
}

/** True when `code` is in the catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

function fillTemplate(template: string, details: ErrorDetails): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = details[name];
    return value === undefined || value === null ? whole.slice(1, -1) : String(value);
  });
}

/** An error the API answers with: a catalogue code, its status and caller-safe details. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly details: ErrorDetails = {},
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? fillTemplate(ERRORS[code].message, details), options);
    this.status = ERRORS[code].status;
  }
}

/** Builds an ApiError: `throw apiError('SANDBOX_NOT_FOUND', { id })`. */
export function apiError(code: ErrorCode, details: ErrorDetails = {}, message?: string): ApiError {
  return new ApiError(code, details, message);
}

/** True when `err` is an ApiError, optionally with the given code. */
export function isApiError(err: unknown, code?: ErrorCode): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}

/** The JSON body for `err` answered to the request `requestId`. */
export function errorBody(err: ApiError, requestId: string): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details }, request_id: requestId };
}

const RUNTIME_TO_API: Record<RuntimeErrorCode, ErrorCode> = {
  SANDBOX_NOT_FOUND: 'SANDBOX_NOT_FOUND',
  SANDBOX_EXISTS: 'CONFLICT',
  INVALID_STATE: 'INVALID_STATE',
  TEMPLATE_NOT_FOUND: 'TEMPLATE_NOT_FOUND',
  TEMPLATE_BUILD_FAILED: 'BAD_REQUEST',
  TEMPLATE_INVALID: 'VALIDATION_ERROR',
  FILE_NOT_FOUND: 'FILE_NOT_FOUND',
  FILE_EXISTS: 'CONFLICT',
  NOT_A_DIRECTORY: 'BAD_REQUEST',
  IS_A_DIRECTORY: 'BAD_REQUEST',
  PATH_OUTSIDE_SANDBOX: 'BAD_REQUEST',
  PERMISSION_DENIED: 'FORBIDDEN',
  PORT_NOT_LISTENING: 'SANDBOX_UNAVAILABLE',
  PROCESS_NOT_FOUND: 'PROCESS_NOT_FOUND',
  SNAPSHOT_INVALID: 'BAD_REQUEST',
  UNSUPPORTED: 'BAD_REQUEST',
  PREREQUISITE_MISSING: 'CAPACITY_EXHAUSTED',
  INVALID_ARGUMENT: 'VALIDATION_ERROR',
  INTERNAL: 'INTERNAL',
};

/**
 * The one mapping from a runtime failure to the API error. The runtime's message and details
 * are kept (they are written to be shown to the sandbox's owner) except for INTERNAL, whose
 * message is replaced by the generic one; the runtime's code goes in `details.runtime_code`.
 */
export function fromRuntimeError(err: RuntimeError): ApiError {
  const code = RUNTIME_TO_API[err.code] ?? 'INTERNAL';
  if (code === 'INTERNAL') return new ApiError('INTERNAL', {}, undefined, { cause: err });
  return new ApiError(code, { ...err.details, runtime_code: err.code }, err.message, { cause: err });
}

/**
 * Turns anything thrown into an ApiError: ApiErrors pass through, RuntimeErrors are mapped,
 * everything else becomes a generic INTERNAL (the original is kept as `cause` for the log).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RuntimeError) return fromRuntimeError(err);
  return new ApiError('INTERNAL', {}, undefined, { cause: err });
}
