import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type ErrorCode, errorBody, toApiError } from '../errors.js';

/** One failing field of a validation error: a JSON pointer into the request part and why. */
export interface FieldError {
  path: string;
  message: string;
}

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Turns Ajv issues into `{path, message}` pairs that name the field a caller got wrong. */
export function fieldErrors(issues: readonly AjvIssue[]): FieldError[] {
  return issues.map((issue) => {
    const path = issue.instancePath ?? '';
    const params = issue.params ?? {};
    if (issue.keyword === 'required' && typeof params.missingProperty === 'string') {
      return { path: `${path}/${params.missingProperty}`, message: 'is required' };
    }
    if (issue.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
      return { path: `${path}/${params.additionalProperty}`, message: 'is not allowed' };
    }
    return { path: path || '/', message: issue.message ?? 'is invalid' };
  });
}

/** Status codes of Fastify's (and its plugins') own client errors, to our catalogue. */
const STATUS_TO_CODE: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

/**
 * Maps anything a request can throw to an ApiError: our own errors pass through; schema
 * failures become VALIDATION_ERROR naming the fields; Fastify's client errors (bad JSON, wrong
 * content type, body too large …) get their catalogue code; everything else is INTERNAL.
 */
export function classifyError(err: unknown, request: FastifyRequest, bodyLimitBytes: number): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as Partial<FastifyError> & { validationContext?: string };
  if (Array.isArray(fe.validation)) {
    return new ApiError('VALIDATION_ERROR', {
      in: fe.validationContext ?? 'body',
      fields: fieldErrors(fe.validation as AjvIssue[]),
    });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ApiError('UNSUPPORTED_MEDIA_TYPE', {
        content_type: String(request.headers['content-type'] ?? '').slice(0, 200),
        supported: ['application/json'],
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', { limit_bytes: bodyLimitBytes });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('BAD_REQUEST', {}, 'The request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(
        'BAD_REQUEST',
        {},
        'The request body is empty but Content-Type is application/json',
      );
  }
  // PostgreSQL refusing a value's bytes (NUL, bad encoding) is the caller's input, not our fault.
  if (fe.code === '22021' || fe.code === '22P05') {
    return new ApiError('BAD_REQUEST', {}, 'The request contains characters that cannot be stored', {
      cause: err,
    });
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = STATUS_TO_CODE[status] ?? 'BAD_REQUEST';
    // Fastify's own client errors describe the request, not our internals, so their text may be shown.
    const message = typeof fe.code === 'string' && fe.code.startsWith('FST_') ? fe.message : undefined;
    return new ApiError(code, {}, message, { cause: err });
  }
  return toApiError(err);
}

/** Sends `err` in the one error shape; a 5xx is logged with the real error, never shown. */
export function sendError(
  err: ApiError,
  request: FastifyRequest,
  reply: FastifyReply,
  original?: unknown,
): void {
  if (err.status >= 500) {
    request.log.error({ err: original ?? err.cause ?? err, code: err.code }, 'request error');
  } else if (err.cause && !(err.cause instanceof ApiError)) {
    request.log.debug({ err: err.cause, code: err.code }, 'client error');
  }
  if (reply.sent || reply.raw.headersSent) return;
  if (err.code === 'RATE_LIMITED' && typeof err.details.retry_after_seconds === 'number') {
    reply.header('retry-after', String(Math.ceil(err.details.retry_after_seconds)));
  }
  reply
    .code(err.status)
    .header('x-request-id', request.id)
    .type('application/json; charset=utf-8')
    .send(errorBody(err, request.id));
}

/**
 * Installs the error handler and the not-found handler on the root instance (child contexts
 * inherit them). Unknown routes and unknown methods on known paths are 404 ROUTE_NOT_FOUND.
 */
export function registerErrorHandler(app: FastifyInstance, options: { bodyLimitBytes: number }): void {
  app.setErrorHandler((err, request, reply) => {
    sendError(classifyError(err, request, options.bodyLimitBytes), request, reply, err);
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    sendError(
      new ApiError('ROUTE_NOT_FOUND', { method: request.method, url: url.slice(0, 200) }),
      request,
      reply,
    );
  });
}

/** Fastify's `frameworkErrors` option: errors raised before routing (malformed URL …). */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode ?? 400;
  const apiErr =
    status < 500 ? new ApiError('BAD_REQUEST', {}, err.message, { cause: err }) : toApiError(err);
  sendError(apiErr, request, reply, err);
}
