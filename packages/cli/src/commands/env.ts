import type { SandboxEvent } from '@corral/sdk';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { parsePairs, printJson, printTable } from '../output.js';

/** `corral env set|list|rm` (a sandbox's secret env) and `corral events`. */
export function envCommands(program: Command): void {
  const env = program
    .command('env')
    .description("a sandbox's secret environment (stored encrypted, given to every exec)");
  standard(env, ['corral env set sbx_… OPENAI_API_KEY=sk-…'], false);

  standard(env.command('set').argument('<sandbox-id>').argument('<K=V...>').description('set variables'), [
    'corral env set sbx_… A=1 B=2',
  ]).action(async (id: string, pairs: string[], opts: JsonOption) => {
    const vars = parsePairs(pairs, 'a variable');
    if (!vars) throw new CliError('Nothing to set.', 'write them as KEY=VALUE');
    const names = await (await client()).sandboxes.get(id).then((box) => box.env.set(vars));
    if (opts.json) printJson({ names });
    else process.stderr.write(`Set ${Object.keys(vars).join(', ')}\n`);
  });

  standard(
    env.command('list').alias('ls').argument('<sandbox-id>').description('the names set (never the values)'),
    ['corral env list sbx_…'],
  ).action(async (id: string, opts: JsonOption) => {
    const names = await (await (await client()).sandboxes.get(id)).env.list();
    if (opts.json) printJson({ names });
    else
      printTable(
        ['NAME'],
        names.map((n) => [n]),
        'No variables set.',
      );
  });

  standard(env.command('rm').argument('<sandbox-id>').argument('<name>').description('remove a variable'), [
    'corral env rm sbx_… OPENAI_API_KEY',
  ]).action(async (id: string, name: string, opts: JsonOption) => {
    await (await (await client()).sandboxes.get(id)).env.remove(name);
    if (opts.json) printJson({ removed: name });
    else process.stderr.write(`Removed ${name}\n`);
  });

  standard(
    program
      .command('events')
      .argument('<sandbox-id>')
      .description("a sandbox's audit events, oldest first")
      .option('--limit <n>', 'at most this many', Number),
    ['corral events sbx_…', 'corral events sbx_… --json | jq ".[].action"'],
  ).action(async (id: string, opts: JsonOption & { limit?: number }) => {
    const box = await (await client()).sandboxes.get(id);
    const all: SandboxEvent[] = [];
    for await (const e of await box.events()) {
      all.push(e);
      if (opts.limit && all.length >= opts.limit) break;
    }
    if (opts.json) printJson(all);
    else
      printTable(
        ['TIME', 'ACTION', 'ACTOR', 'DETAILS'],
        all.map((e) => [
          e.created_at,
          e.action,
          `${e.actor_type}${e.actor_id ? `:${e.actor_id}` : ''}`,
          JSON.stringify(e.details),
        ]),
        'No events.',
      );
  });
}
