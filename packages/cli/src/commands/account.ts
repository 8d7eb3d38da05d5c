import type { ApiKeyInfo } from '@corral/sdk';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { collect, printJson, printTable } from '../output.js';

/** `corral apikeys create|list|revoke`. */
export function apiKeyCommands(program: Command): void {
  const keys = program.command('apikeys').alias('keys').description('your API keys');
  standard(keys, ['corral apikeys create --name ci --scope sandbox:read'], false);

  standard(
    keys
      .command('create')
      .description('create an API key (its secret is shown once)')
      .requiredOption('-n, --name <name>', 'a name')
      .option('-s, --scope <scope>', 'a scope (repeatable; default: all of yours)', collect),
    ['corral apikeys create --name ci --scope sandbox:read --scope sandbox:exec'],
  ).action(async (opts: JsonOption & { name: string; scope?: string[] }) => {
    const created = await (await client()).apiKeys.create({ name: opts.name, scopes: opts.scope });
    if (opts.json) printJson(created);
    else {
      process.stdout.write(`${created.key}\n`);
      process.stderr.write(`Created ${created.id}; the key above is shown only this once.\n`);
    }
  });

  standard(keys.command('list').alias('ls').description('list API keys (never their secrets)'), [
    'corral apikeys list',
  ]).action(async (opts: JsonOption) => {
    const all: ApiKeyInfo[] = [];
    for await (const k of await (await client()).apiKeys.list()) all.push(k);
    if (opts.json) printJson(all);
    else
      printTable(
        ['ID', 'NAME', 'PREFIX', 'SCOPES', 'LAST USED', 'REVOKED'],
        all.map((k) => [k.id, k.name, k.prefix, k.scopes.join(','), k.last_used_at, k.revoked_at]),
      );
  });

  standard(keys.command('revoke').argument('<key-id>').description('revoke an API key'), [
    'corral apikeys revoke key_…',
  ]).action(async (id: string, opts: JsonOption) => {
    await (await client()).apiKeys.revoke(id);
    if (opts.json) printJson({ revoked: id });
    else process.stderr.write(`Revoked ${id}\n`);
  });
}
