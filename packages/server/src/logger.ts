import pino, { type DestinationStream, type Logger } from 'pino';

/** Query parameters whose values never reach a log line (`?token=` on WebSocket URLs …). */
const SECRET_QUERY_PARAMS =
  /([?&](?:token|observe|tunnel|corral_token|sig|api_key|key|password|secret|code)=)[^&#]*/gi;

/** `url` with secret query values replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMS, '$1[redacted]');
}

/** Paths pino blanks in every line: credentials in headers, cookies, bodies. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'body',
  'req.body',
  'password',
  'api_key',
  'token',
];

/**
 * The server's logger: pino JSON lines on stdout (or `destination`), ISO timestamps, and
 * credentials redacted. Request lines carry `request_id`.
 */
export function createLogger(options: { level: string }, destination?: DestinationStream): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'corral' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
