import { spawn } from 'node:child_process';
import type { Sandbox } from '@corral/sdk';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { printJson, printTable } from '../output.js';
import { askHidden } from '../prompt.js';
import { sshCommand } from './ssh.js';

/** commander's parser for a TCP port argument. */
export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535)
    throw new CliError(`Not a port: "${value}".`, 'give a number from 1 to 65535');
  return n;
}

/** The server's shortest port password. */
const MIN_PASSWORD = 8;

/** All of stdin as text. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The password for `ports protect`: the first line of stdin with `--password-stdin`, else asked
 * twice on the terminal without echo. Never from argv (it would show in `ps` and shell history).
 */
async function readPassword(fromStdin: boolean): Promise<string> {
  let password: string;
  if (fromStdin) password = (await readStdin()).split(/\r?\n/)[0] ?? '';
  else if (process.stdin.isTTY) {
    password = await askHidden('Password: ');
    if (password.length >= MIN_PASSWORD && (await askHidden('Again: ')) !== password)
      throw new CliError('The passwords differ.', 'run it again');
  } else
    throw new CliError(
      'stdin is not a terminal, so the password cannot be asked for.',
      'pipe it in with --password-stdin (e.g. corral ports protect <id> <port> --password-stdin < pw.txt)',
    );
  if (password.length < MIN_PASSWORD)
    throw new CliError(`The password must have at least ${MIN_PASSWORD} characters.`, 'choose a longer one');
  return password;
}

/** Who may open a port's preview URL. */
function access(p: { public: boolean; protected: boolean }): string {
  if (p.public) return 'public';
  return p.protected ? 'password' : 'private';
}

/** `corral ports`, `corral open` (preview URLs) and `corral ssh` (the SSH gateway, in ssh.ts). */
export function portCommands(program: Command): void {
  const ports = program
    .command('ports')
    .description("a sandbox's ports and who may open their preview URLs (private by default)");
  standard(
    ports,
    [
      'corral ports sbx_…',
      'corral ports public sbx_… 3000',
      'corral ports protect sbx_… 3000 --password-stdin < pw.txt',
    ],
    false,
  );

  standard(
    ports
      .command('ls', { isDefault: true })
      .alias('list')
      .argument('<sandbox-id>')
      .description("list a sandbox's ports: what listens inside, its preview URL and who may open it"),
    ['corral ports sbx_…', 'corral ports ls sbx_… --json'],
  ).action(async (id: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    const list = await box.ports();
    if (opts.json) printJson(list);
    else
      printTable(
        ['PORT', 'PROCESS', 'STATE', 'ACCESS', 'URL'],
        list.map((p) => [
          p.port,
          p.process,
          p.listening ? 'listening' : 'not listening',
          access(p),
          p.preview_url,
        ]),
        `Nothing listens in ${id} yet. Any port has a URL: corral open ${id} <port>`,
      );
  });

  /** One `ports <verb> <sandbox-id> <port>` subcommand that changes who may open the port. */
  const change = (
    verb: string,
    description: string,
    run: (box: Sandbox, p: number, opts: JsonOption & { passwordStdin?: boolean }) => Promise<string>,
  ) =>
    standard(
      ports
        .command(verb)
        .argument('<sandbox-id>')
        .argument('<port>', 'the port inside the sandbox', port)
        .description(description),
      [`corral ports ${verb} sbx_… 3000`],
    ).action(async (id: string, p: number, opts: JsonOption & { passwordStdin?: boolean }) => {
      const box = await (await client()).sandboxes.get(id);
      const done = await run(box, p, opts);
      const settings = (await box.ports()).find((x) => x.port === p);
      const state = { port: p, public: settings?.public ?? false, protected: settings?.protected ?? false };
      if (opts.json) printJson({ ...state, url: box.previewUrl(p) });
      else {
        process.stderr.write(`${done} (access: ${access(state)})\n`);
        process.stdout.write(`${box.previewUrl(p)}\n`);
      }
    });

  change('public', "open a port's preview URL to anyone, with no credentials", async (box, p) => {
    await box.makePortPublic(p);
    return `Port ${p} is public`;
  });
  change('private', "make a port's preview private again (API keys, tokens, password)", async (box, p) => {
    await box.makePortPrivate(p);
    return `Port ${p} is no longer public`;
  });
  change(
    'protect',
    'let visitors in with a password (asked without echo; never on the command line)',
    async (box, p, opts) => {
      await box.protectPort(p, await readPassword(opts.passwordStdin === true));
      return `Port ${p} asks for the password`;
    },
  ).option('--password-stdin', 'read the password from stdin (one line) instead of asking');
  change('unprotect', "remove a port's password", async (box, p) => {
    await box.unprotectPort(p);
    return `Port ${p} has no password`;
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
