import type { Command } from 'commander';
import { standard } from '../command.js';
import { client } from '../config.js';
import { collect, parsePairs, printJson, withSpinner } from '../output.js';

/** Everything on standard input, as text (only when it is not a terminal). */
async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.length ? text : undefined;
}

/** `corral exec <id> -- cmd args…`: output streamed as produced, the command's exit code as ours. */
export function execCommand(program: Command): void {
  standard(
    program
      .command('exec')
      .description("run a command in a sandbox, streaming its output; exits with the command's exit code")
      .argument('<id>', 'the sandbox')
      .argument('<command...>', 'the program and its arguments (after --)')
      .option('-e, --env <K=V>', 'environment variable (repeatable)', collect)
      .option('-w, --cwd <dir>', 'working directory (default: the home directory)')
      .option('--timeout <seconds>', 'kill it after this long (0 = no limit; server default 30)', Number)
      .option('--root', 'run as root')
      .option('--no-stdin', 'do not pass standard input through (it is, when it is not a terminal)')
      .option(
        '--json',
        "wait for the end and print {exit_code, stdout, stderr, duration_ms, timed_out} (exit code still the command's)",
      ),
    [
      'corral exec sbx_… -- python3 -c "print(1)"',
      "corral exec sbx_… -- sh -c 'exit 7'; echo $?   # 7",
      'echo hello | corral exec sbx_… -- cat',
      'corral exec --json sbx_… -- ls /   # one JSON document',
    ],
    false,
  ).action(
    async (
      id: string,
      argv: string[],
      opts: {
        env?: string[];
        cwd?: string;
        timeout?: number;
        root?: boolean;
        stdin: boolean;
        json?: boolean;
      },
    ) => {
      const [command, ...args] = argv as [string, ...string[]];
      const stdin = opts.stdin ? await readStdin() : undefined;
      const box = await (await client()).sandboxes.get(id);
      const options = {
        env: parsePairs(opts.env, '--env'),
        cwd: opts.cwd,
        timeoutSeconds: opts.timeout,
        user: opts.root ? ('root' as const) : undefined,
        stdin,
      };
      if (opts.json) {
        const r = await withSpinner('Running', () => box.exec(command, args, options));
        printJson({
          exit_code: r.exitCode,
          stdout: r.stdout,
          stderr: r.stderr,
          duration_ms: r.durationMs,
          timed_out: r.timedOut,
          truncated: r.truncated,
        });
        process.exitCode = r.exitCode;
        return;
      }
      const run = await withSpinner('Starting', () =>
        box.execStream(command, args, {
          ...options,
          onStdout: (text) => process.stdout.write(text),
          onStderr: (text) => process.stderr.write(text),
        }),
      );
      // Ctrl-C: the remote command gets SIGINT; a second one drops the connection (the server kills it).
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts === 1) run.kill('SIGINT').catch(() => run.abort());
        else run.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const exit = await run.wait();
        if (exit.timedOut) process.stderr.write(`corral: the command timed out and was killed\n`);
        process.exitCode = exit.exitCode;
      } catch (err) {
        if (interrupts > 0) {
          process.exitCode = 130;
          return;
        }
        throw err;
      } finally {
        process.off('SIGINT', onSigint);
      }
    },
  );
}
