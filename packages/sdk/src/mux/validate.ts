import { ValidationError } from '../errors.js';

/** The signals a process channel accepts. */
export const MUX_SIGNALS = [
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGQUIT',
] as const;

/** A signal name a process channel accepts. */
export type MuxSignal = (typeof MUX_SIGNALS)[number];

/** A ValidationError raised before anything is sent (`details.reason` names the field). */
export function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { code: 'VALIDATION_ERROR', status: 0, details: { reason: field } });
}

/** Throws unless `name` is a signal the protocol knows. */
export function checkSignal(name: string): asserts name is MuxSignal {
  if (!(MUX_SIGNALS as readonly string[]).includes(name)) {
    throw invalid(`Unknown signal ${name}: one of ${MUX_SIGNALS.join(' ')}`, 'signal');
  }
}

/** Throws unless `cols`×`rows` is a terminal size the protocol accepts (1 … 1000 each). */
export function checkSize(cols: number, rows: number): void {
  for (const [name, n] of [
    ['cols', cols],
    ['rows', rows],
  ] as const) {
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw invalid(`${name} must be 1 … 1000, not ${n}`, name);
  }
}
