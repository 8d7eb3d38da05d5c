import type { Command } from 'commander';
import { describe } from './errors.js';

/** Options every command has. */
export interface JsonOption {
  json?: boolean;
}

/** Adds `--json` and an example to `cmd`'s help. */
export function standard(cmd: Command, examples: string[], json = true): Command {
  if (json) cmd.option('--json', 'print one JSON document instead of a table');
  cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  return cmd;
}

/** Reports `err` on stderr (one line, then the next step) and sets the exit code. */
export function report(err: unknown): number {
  const { line, hint, exitCode } = describe(err);
  process.stderr.write(`error: ${line}\n`);
  if (hint) process.stderr.write(`  → ${hint}\n`);
  return exitCode;
}
