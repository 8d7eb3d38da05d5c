import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { printJson, printTable } from '../output.js';
import { sshCommand } from './ssh.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535)
    throw new CliError(`Not a port: "${value}".`, 'give a number from 1 to 65535');
  return n;
}

/** Who may open a port's preview URL. */
function access(p: { public: boolean; protected: boolean }): string {
  if (p.public) return 'public';
  return p.protected ? 'password' : 'private';
}

/** `corral ports`, `corral open` (preview URLs) and `corral ssh` (the SSH gateway, in ssh.ts). */
export function portCommands(program: Command): void {
  standard(
    program
      .command('ports')
      .argument('<sandbox-id>')
      .description("a sandbox's ports: what listens inside, its preview URL and who may open it"),
    ['corral ports sbx_…', 'corral ports sbx_… --json'],
  ).action(async (id: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    const ports = await box.ports();
    if (opts.json) printJson(ports);
    else
      printTable(
        ['PORT', 'PROCESS', 'STATE', 'ACCESS', 'URL'],
        ports.map((p) => [
          p.port,
          p.process,
          p.listening ? 'listening' : 'not listening',
          access(p),
          p.preview_url,
        ]),
        `Nothing listens in ${id} yet. Any port has a URL: corral open ${id} <port>`,
      );
  });

  standard(
    program
      .command('open')
      .argument('<sandbox-id>')
      .argument('<port>', 'the port inside the sandbox', port)
      .description('print the preview URL of a port (and open it in a browser when one is available)'),
    ['corral open sbx_… 3000'],
  ).action(async (id: string, p: number, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    const url = box.previewUrl(p);
    if (opts.json) printJson({ port: p, url });
    else process.stdout.write(`${url}\n`);
    if (!opts.json && process.stdout.isTTY) {
      const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
      const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
      child.on('error', () => {}); // no browser here: the URL is printed
      child.unref();
    }
  });

  sshCommand(program);
}
