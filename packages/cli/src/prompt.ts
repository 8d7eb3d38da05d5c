import { CliError } from './errors.js';

/**
 * Reads one line from the terminal in raw mode, echoing nothing (API keys, passwords). Enter
 * ends it, Backspace erases, Ctrl-C cancels (exit 130), Ctrl-D ends it and refuses an empty one.
 * The caller checks `process.stdin.isTTY` first.
 */
export function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let typed = '';
    process.stderr.write(prompt);
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.resume();
    const finish = (error?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (data: string) => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CliError('Cancelled.', undefined, 130));
        if (ch === '\u0004') return finish(typed ? undefined : new CliError('Nothing entered.'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}
