import { createInterface } from 'node:readline/promises';
import { Corral } from '@corral/sdk/node';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client, configPath, readConfig, removeConfig, resolveCredentials, writeConfig } from '../config.js';
import { CliError } from '../errors.js';
import { printFields, printJson, withSpinner } from '../output.js';
import { askHidden } from '../prompt.js';

let pipedLines: AsyncIterator<string> | null = null;

/** Asks on the terminal (input hidden when `secret`), or takes the next line of piped stdin. */
async function ask(question: string, secret = false): Promise<string> {
  if (!process.stdin.isTTY) {
    // One reader for every question: a reader per question could swallow the next answers.
    pipedLines ??= createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
    const next = await pipedLines.next();
    return next.done ? '' : next.value.trim();
  }
  if (secret) return (await askHidden(question)).trim();
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** `corral login`, `logout`, `whoami`. */
export function authCommands(program: Command): void {
  standard(
    program
      .command('login')
      .description('store the server URL and an API key (checked against the server) in your config dir')
      .option('--url <url>', 'the server (default: CORRAL_URL, the stored one, or http://127.0.0.1:8080)')
      .option('--key <key>', 'an API key (crl_sk_…); asked for when missing'),
    ['corral login --url http://127.0.0.1:8080 --key crl_sk_…', 'corral login   # asks for both'],
  ).action(async (opts: JsonOption & { url?: string; key?: string }) => {
    const stored = await readConfig();
    const fallback = process.env.CORRAL_URL || stored?.url || 'http://127.0.0.1:8080';
    const url = opts.url ?? ((await ask(`Server URL [${fallback}]: `)) || fallback);
    const key = opts.key ?? (await ask('API key: ', true));
    if (!key)
      throw new CliError(
        'No API key given.',
        'pass --key crl_sk_… (the server writes its first admin key to data/admin-credentials.json)',
      );
    const me = await withSpinner('Checking the key', () => new Corral({ baseUrl: url, apiKey: key }).me());
    const path = await writeConfig({ url, api_key: key });
    if (opts.json) printJson({ url, config: path, me });
    else process.stderr.write(`Logged in to ${url} as ${me.user.email} (saved in ${path})\n`);
  });

  standard(program.command('logout').description('forget the stored URL and key'), ['corral logout']).action(
    async (opts: JsonOption) => {
      const removed = await removeConfig();
      if (opts.json) printJson({ removed, config: configPath() });
      else process.stderr.write(removed ? `Logged out (removed ${configPath()})\n` : 'Not logged in.\n');
    },
  );

  standard(program.command('whoami').description('who the configured key belongs to'), [
    'corral whoami',
  ]).action(async (opts: JsonOption) => {
    const { url, source } = await resolveCredentials();
    const me = await withSpinner('Asking the server', async () => (await client()).me());
    if (opts.json) {
      printJson({ url, source, ...me });
      return;
    }
    printFields([
      ['server', url],
      ['user', `${me.user.email} (${me.user.id})`],
      ['workspaces', me.workspaces.map((w) => `${w.name} ${w.id} ${w.role}`).join(', ')],
      ['key from', source],
    ]);
  });
}
