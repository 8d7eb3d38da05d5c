import { constants } from 'node:os';
import type { Command } from 'commander';
import { standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { withSpinner } from '../output.js';

/**
 * `corral shell <id>`: an interactive shell over the terminal WebSocket. The local terminal goes
 * into raw mode (every key goes to the sandbox, Ctrl-C included), window changes resize the
 * remote PTY, and the terminal is restored when the shell exits or the connection drops.
 */
export function shellCommand(program: Command): void {
  standard(
    program
      .command('shell')
      .description('open an interactive shell (a PTY) in a sandbox')
      .argument('<id>', 'the sandbox')
      .option('--session <session>', 'reattach to a running terminal session'),
    ['corral shell sbx_…', 'corral shell sbx_… --session term_…   # reattach'],
    false,
  ).action(async (id: string, opts: { session?: string }) => {
    const box = await (await client()).sandboxes.get(id);
    const stdin = process.stdin;
    const stdout = process.stdout;
    const term = await withSpinner('Connecting', () =>
      box.terminal({ cols: stdout.columns || 80, rows: stdout.rows || 24, session: opts.session }),
    );
    const wasRaw = stdin.isTTY ? stdin.isRaw : false;
    if (stdin.isTTY) stdin.setRawMode(true);
    const onInput = (chunk: Buffer) => term.write(new Uint8Array(chunk));
    const onResize = () => term.resize(stdout.columns, stdout.rows);
    stdin.on('data', onInput);
    stdin.resume();
    stdout.on('resize', onResize);
    let closed = false;
    const output = (async () => {
      for await (const chunk of term) stdout.write(chunk);
      closed = true;
    })();
    const exit = await term.exited;
    // After an exit the server closes the socket: wait for the last output, not forever.
    await Promise.race([output, new Promise((resolve) => setTimeout(resolve, 1000))]);
    if (!closed) term.close();
    stdin.off('data', onInput);
    stdout.off('resize', onResize);
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
    stdin.pause();
    if (exit?.exitCode !== null && exit?.exitCode !== undefined) {
      process.exitCode = exit.exitCode;
      return;
    }
    if (exit?.signal) {
      process.exitCode = 128 + (constants.signals[exit.signal as NodeJS.Signals] ?? 0);
      return;
    }
    if (exit) {
      // Ended with no status: the sandbox stopped or went away under it.
      throw new CliError(
        'The shell ended without an exit status.',
        `check the sandbox: \`corral sandbox get ${id}\``,
      );
    }
    throw new CliError(
      'The connection to the terminal closed.',
      `reattach with \`corral shell ${id} --session ${term.sessionId}\``,
    );
  });
}
