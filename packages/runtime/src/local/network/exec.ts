import { spawn } from 'node:child_process';
import { RuntimeError } from '../../errors.js';

/** Output of a finished command. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Run `command args…` (no shell), feeding `input` on stdin. Rejects with PREREQUISITE_MISSING
 * when the binary is absent and INTERNAL on a non-zero exit unless `allowFailure` is set.
 */
export function run(
  command: string,
  args: string[],
  options: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new RuntimeError(
            'PREREQUISITE_MISSING',
            `${command} is not installed`,
            { command },
            { cause: err },
          ),
        );
      } else {
        reject(
          new RuntimeError(
            'INTERNAL',
            `${command} failed to start: ${err.message}`,
            { command },
            { cause: err },
          ),
        );
      }
    });
    child.on('close', (code, signal) => {
      const result = {
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        exitCode: code ?? 128,
      };
      if (result.exitCode !== 0 && !options.allowFailure) {
        const detail = result.stderr.trim() || `signal ${signal ?? 'none'}`;
        reject(
          new RuntimeError('INTERNAL', `${command} ${args.join(' ')} failed: ${detail}`, {
            command,
            exitCode: result.exitCode,
          }),
        );
        return;
      }
      resolve(result);
    });
    child.stdin.on('error', () => {}); // the child may exit before reading stdin; `close` reports it
    child.stdin.end(options.input ?? '');
  });
}
