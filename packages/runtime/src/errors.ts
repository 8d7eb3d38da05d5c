/**
 * The runtime's closed list of error codes. The server maps each to its HTTP error; callers
 * switch on `code`, never on the message.
 */
export const RUNTIME_ERROR_CODES = [
  'SANDBOX_NOT_FOUND',
  'SANDBOX_EXISTS',
  'INVALID_STATE',
  'TEMPLATE_NOT_FOUND',
  'TEMPLATE_BUILD_FAILED',
  'TEMPLATE_INVALID',
  'FILE_NOT_FOUND',
  'FILE_EXISTS',
  'NOT_A_DIRECTORY',
  'IS_A_DIRECTORY',
  'PATH_OUTSIDE_SANDBOX',
  'PERMISSION_DENIED',
  'PORT_NOT_LISTENING',
  'PROCESS_NOT_FOUND',
  'SNAPSHOT_INVALID',
  'UNSUPPORTED',
  'PREREQUISITE_MISSING',
  'INVALID_ARGUMENT',
  'INTERNAL',
] as const;

export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[number];

/** A typed runtime failure. `details` is safe to show to the sandbox's owner. */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `err` is a RuntimeError, optionally with the given code. */
export function isRuntimeError(err: unknown, code?: RuntimeErrorCode): err is RuntimeError {
  return err instanceof RuntimeError && (code === undefined || err.code === code);
}
