import { SandboxUnavailableError } from '@corral/sdk';
import { forwardPort } from '@corral/sdk/node';
import type { Command } from 'commander';
import { standard } from '../command.js';
import { client } from '../config.js';
import { CliError, describe } from '../errors.js';

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new CliError(`Not a port: "${value}".`, 'give a number from 1 to 65535');
  return n;
}

/**
 * `corral port-forward <id> <port> [--local <port>]`: a local TCP port forwarded into the
 * sandbox over its multiplexed WebSocket (like `ssh -L`), until Ctrl-C.
 */
export function portForwardCommand(program: Command): void {
  standard(
    program
      .command('port-forward')
      .argument('<sandbox-id>')
      .argument('<port>', 'the port inside the sandbox', portNumber)
      .option('--local <port>', 'the local port (default: the same number, else any free one)', portNumber)
      .option('--host <address>', 'the local address to listen on', '127.0.0.1')
      .description('forward a local port to a port inside a sandbox (like ssh -L), until Ctrl-C'),
    [
      'corral port-forward sbx_… 5432 --local 15432',
      'corral port-forward sbx_… 3000   # then open http://127.0.0.1:3000',
    ],
    false,
  ).action(async (id: string, port: number, opts: { local?: number; host: string }) => {
    if (port === 0) throw new CliError('Not a port: "0".', 'give a number from 1 to 65535');
    const box = await (await client()).sandboxes.get(id);
    const onError = (err: unknown) => {
      const { line } = describe(err);
      process.stderr.write(`error: a forwarded connection failed: ${line}\n`);
    };
    let fwd: Awaited<ReturnType<typeof forwardPort>>;
    try {
      fwd = await forwardPort(box, port, { localPort: opts.local ?? port, host: opts.host, onError });
    } catch (err) {
      if (err instanceof SandboxUnavailableError) {
        throw new CliError(
          `Nothing listens on port ${port} in ${id}.`,
          `start your server there first; see what listens with \`corral ports ${id}\``,
        );
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && opts.local === undefined) {
        // The same number is taken here: any free port will do.
        fwd = await forwardPort(box, port, { localPort: 0, host: opts.host, onError, verify: false });
      } else if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new CliError(
          `Cannot listen on ${opts.host}:${opts.local}: ${code}.`,
          'pick another local port with --local',
        );
      } else {
        throw err;
      }
    }
    process.stdout.write(`Forwarding ${fwd.host}:${fwd.localPort} -> ${id}:${port}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await fwd.close();
  });
}
