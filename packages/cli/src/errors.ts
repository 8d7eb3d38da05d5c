import {
  ConnectionError,
  CorralError,
  ForbiddenError,
  InvalidStateError,
  NotFoundError,
  PlanLimitError,
  RateLimitError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  TemplateNotFoundError,
  UnauthorizedError,
  ValidationError,
} from '@corral/sdk';

/** Exit codes: 0 ok, 1 API or usage error, 2 not supported here (exec exits with its command's code). */
export const EXIT = { ok: 0, error: 1, unsupported: 2 } as const;

/** An error the CLI reports as one line plus the next step to take. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
  }
}

function hintFor(err: CorralError): string | undefined {
  if (err instanceof UnauthorizedError) return 'run `corral login` with a valid API key';
  if (err instanceof SandboxNotFoundError) return 'list them with `corral sandbox list`';
  if (err instanceof SnapshotNotFoundError) return 'list them with `corral snapshot list <sandbox-id>`';
  if (err instanceof TemplateNotFoundError) return 'list them with `corral templates list`';
  if (err instanceof NotFoundError) return 'check the id or path';
  if (err instanceof PlanLimitError) return 'remove something first, or ask for a larger plan';
  if (err instanceof ForbiddenError)
    return 'use a key with the needed scope (`corral apikeys create --scope …`)';
  if (err instanceof InvalidStateError) return 'check its status with `corral sandbox get <id>`';
  if (err instanceof ValidationError) return 'see `--help` for the accepted values';
  if (err instanceof RateLimitError) return `try again in ${err.retryAfter ?? 'a few'} seconds`;
  if (err instanceof ConnectionError)
    return 'is the server running? (`corral serve`, or check CORRAL_URL / `corral login --url`)';
  return undefined;
}

/** The one line (and hint) for any error, and the exit code to end with. */
export function describe(err: unknown): { line: string; hint?: string; exitCode: number } {
  if (err instanceof CliError) return { line: err.message, hint: err.hint, exitCode: err.exitCode };
  if (err instanceof CorralError) {
    const fields = err.details.fields ? ` (${JSON.stringify(err.details.fields)})` : '';
    return { line: `${err.message}${fields} [${err.code}]`, hint: hintFor(err), exitCode: EXIT.error };
  }
  if (err instanceof Error) return { line: err.message, exitCode: EXIT.error };
  return { line: String(err), exitCode: EXIT.error };
}
