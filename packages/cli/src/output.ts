import { CliError } from './errors.js';

/*
 * What the CLI prints: tables for people, one JSON document for programs (`--json`), spinners
 * and progress bars on stderr only when it is a terminal.
 */

/** Prints `value` as one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as an aligned table with a header (or a note when there are none). */
export function printTable(
  headers: string[],
  rows: (string | number | null | undefined)[][],
  empty = '(none)',
): void {
  if (rows.length === 0) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const cells = rows.map((row) =>
    row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(headers), ...cells.map(line)].join('\n')}\n`);
}

/** Prints `key: value` lines. */
export function printFields(fields: [string, unknown][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [key, value] of fields) {
    const text =
      value === null || value === undefined
        ? '-'
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
    process.stdout.write(`${`${key}:`.padEnd(width + 2)}${text}\n`);
  }
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Runs `work` with a spinner on stderr that appears only after a second and only on a terminal
 * (so quick calls and pipes stay clean).
 */
export async function withSpinner<T>(text: string, work: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return work();
  let frame = 0;
  let shown = false;
  const draw = () => {
    shown = true;
    process.stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${text}`);
  };
  let timer: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    draw();
    timer = setInterval(draw, 80);
  }, 1000);
  try {
    return await work();
  } finally {
    clearTimeout(start);
    clearInterval(timer);
    if (shown) process.stderr.write('\r\x1b[K');
  }
}

/** Human bytes: 1.5 MiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A progress bar on stderr, drawn only after a second, on a terminal, and when not quiet. */
export class Progress {
  private bytes = 0;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private shown = false;

  constructor(
    private readonly label: string,
    private readonly total: number | null,
    quiet: boolean,
  ) {
    if (!Progress.wanted(quiet)) return;
    this.timer = setInterval(() => {
      if (Date.now() - this.started >= 1000) this.draw();
    }, 100);
    this.timer.unref();
  }

  /** Whether a bar may be drawn at all (a terminal, not quiet). */
  static wanted(quiet: boolean): boolean {
    return !quiet && process.stderr.isTTY === true;
  }

  /** Counts bytes as they pass. */
  add(count: number): void {
    this.bytes += count;
  }

  /** Bytes counted so far. */
  get transferred(): number {
    return this.bytes;
  }

  private draw(): void {
    this.shown = true;
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = `${formatBytes(this.bytes / seconds)}/s`;
    let bar = '';
    if (this.total) {
      const ratio = Math.min(this.bytes / this.total, 1);
      const width = 24;
      const filled = Math.round(ratio * width);
      bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% `;
    }
    const of = this.total ? ` / ${formatBytes(this.total)}` : '';
    const tail = ` ${bar}${formatBytes(this.bytes)}${of} ${rate}`;
    // One line that fits: a wrapped line could not be redrawn in place.
    const room = Math.max((process.stderr.columns || 80) - 1 - tail.length, 8);
    const label =
      this.label.length > room ? `…${this.label.slice(this.label.length - room + 1)}` : this.label;
    process.stderr.write(`\r\x1b[K${label}${tail}`.slice(0, (process.stderr.columns || 80) + 4));
  }

  /** Stops drawing (the last state stays on its line when it was shown). */
  done(): void {
    clearInterval(this.timer);
    if (this.shown) {
      this.draw();
      process.stderr.write('\n');
    }
  }
}

/** `K=V` pairs into an object (a value may contain `=`). */
export function parsePairs(pairs: string[] | undefined, what: string): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`${what} must be KEY=VALUE, got "${pair}".`, 'write it as KEY=VALUE');
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** commander's collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
