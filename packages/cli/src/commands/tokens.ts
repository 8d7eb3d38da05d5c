import { type Command, Option } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { printFields, printJson, printTable } from '../output.js';
import { port } from './ports.js';

/** A whole number of seconds from 1 to 86400 (the server's most). */
function ttl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 86_400)
    throw new CliError(`Not a lifetime: "${value}".`, 'give seconds from 1 to 86400 (a day)');
  return n;
}

/** What `corral tunnel` takes. */
interface TunnelOptions extends JsonOption {
  kind: 'ssh' | 'shell' | 'port';
  port?: number;
  ttl?: number;
}

/** `corral tokens ls|revoke` and `corral tunnel`: a sandbox's access tokens. */
export function tokenCommands(program: Command): void {
  const tokens = program
    .command('tokens')
    .description("a sandbox's access tokens (ssh, shell, port, observe): list, revoke");
  standard(tokens, ['corral tokens ls sbx_…', 'corral tokens revoke sbx_… tun_…'], false);

  standard(
    tokens
      .command('ls', { isDefault: true })
      .alias('list')
      .argument('<sandbox-id>')
      .description("list a sandbox's tokens, newest first (never their secrets)"),
    ['corral tokens ls sbx_…', 'corral tokens ls sbx_… --json'],
  ).action(async (id: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    const all = await box.tokens();
    if (opts.json) printJson(all);
    else
      printTable(
        ['ID', 'KIND', 'PORT', 'STATUS', 'EXPIRES', 'CREATED BY', 'LAST USED'],
        all.map((t) => [t.id, t.kind, t.port, t.status, t.expires_at, t.created_by, t.last_used_at]),
        `No tokens for ${id}: corral tunnel ${id} --kind ssh`,
      );
  });

  standard(
    tokens
      .command('revoke')
      .argument('<sandbox-id>')
      .argument('<token-id>')
      .description(
        'revoke a token: refused from its next use on; the terminals, SSH sessions and preview WebSockets it opened are closed',
      ),
    ['corral tokens revoke sbx_… tun_…'],
  ).action(async (id: string, tokenId: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    await box.revokeToken(tokenId);
    if (opts.json) printJson({ revoked: tokenId });
    else process.stderr.write(`Revoked ${tokenId}\n`);
  });

  standard(
    program
      .command('tunnel')
      .argument('<sandbox-id>')
      .addOption(
        new Option('-k, --kind <kind>', 'ssh: an SSH login; shell: a terminal WebSocket; port: one HTTP port')
          .choices(['ssh', 'shell', 'port'])
          .default('ssh'),
      )
      .option('-p, --port <port>', 'the port inside the sandbox (with --kind port)', port)
      .option('--ttl <seconds>', 'lifetime in seconds (default 3600, at most 86400)', ttl)
      .description('mint an access token for a sandbox (shown once) and print how to use it'),
    [
      'corral tunnel sbx_…                          # ssh -p 2222 crl_tk_…@host',
      'corral tunnel sbx_… --kind port --port 3000  # a preview URL that lets you in',
      'corral tunnel sbx_… --kind shell --ttl 600   # a terminal WebSocket URL',
    ],
  ).action(async (id: string, opts: TunnelOptions) => {
    if (opts.kind === 'port' && opts.port === undefined)
      throw new CliError('--kind port needs --port.', 'e.g. corral tunnel <id> --kind port --port 3000');
    if (opts.kind !== 'port' && opts.port !== undefined)
      throw new CliError(`--port goes with --kind port, not ${opts.kind}.`, 'drop --port or add --kind port');
    const box = await (await client()).sandboxes.get(id);
    const tunnel = await box.tunnel({ kind: opts.kind, port: opts.port, ttl_seconds: opts.ttl });
    if (opts.json) {
      printJson(tunnel);
      return;
    }
    printFields([
      ['token', tunnel.token],
      ['id', tunnel.id],
      ['kind', tunnel.kind],
      ['expires', tunnel.expires_at],
      ...(tunnel.command ? ([['command', tunnel.command]] as [string, string][]) : []),
      ...(tunnel.url ? ([['url', tunnel.url]] as [string, string][]) : []),
    ]);
    process.stderr.write(
      `The token is shown only this once; revoke it with: corral tokens revoke ${id} ${tunnel.id}\n`,
    );
  });
}
