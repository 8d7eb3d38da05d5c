import { createReadStream } from 'node:fs';
import type { TemplateInfo } from '@corral/sdk';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { collect, formatBytes, printFields, printJson, printTable, withSpinner } from '../output.js';

/** `corral templates list|get|create|rm`. */
export function templateCommands(program: Command): void {
  const tpl = program.command('templates').alias('template').description('sandbox templates (images)');
  standard(tpl, ['corral templates list', 'corral templates create --name data --package jq --wait'], false);

  standard(tpl.command('list').alias('ls').description('built-in and custom templates'), [
    'corral templates list',
  ]).action(async (opts: JsonOption) => {
    const all: TemplateInfo[] = [];
    for await (const t of await (await client()).templates.list()) all.push(t);
    if (opts.json) printJson(all);
    else
      printTable(
        ['ID', 'NAME', 'STATUS', 'SOURCE', 'SIZE'],
        all.map((t) => [
          t.id,
          t.name,
          t.status,
          t.builtin ? 'builtin' : t.source,
          t.size_bytes === null ? '-' : formatBytes(t.size_bytes),
        ]),
      );
  });

  standard(tpl.command('get').argument('<id>').description('a template, with its build log'), [
    'corral templates get python',
  ]).action(async (id: string, opts: JsonOption) => {
    const t = await (await client()).templates.get(id);
    if (opts.json) printJson(t);
    else {
      printFields([
        ['id', t.id],
        ['name', t.name],
        ['status', t.status],
        ['source', t.builtin ? 'builtin' : t.source],
        ['packages', t.packages?.join(' ')],
        ['size', t.size_bytes === null ? null : formatBytes(t.size_bytes)],
        ['error', t.error],
      ]);
      if (t.log) process.stdout.write(`\n${t.log}\n`);
    }
  });

  standard(
    tpl
      .command('create')
      .description('build a template from Debian packages, or import an OCI / docker save tarball')
      .requiredOption('-n, --name <name>', 'its name')
      .option('-p, --package <pkg>', 'a Debian package (repeatable)', collect)
      .option('-r, --run <step>', 'a shell step run as root while building (repeatable)', collect)
      .option('--image <tarball>', 'an OCI image or `docker save` tarball to import instead')
      .option('--wait', 'wait until it is built'),
    [
      'corral templates create --name data --package jq --package sqlite3 --wait',
      'corral templates create --name app --image app.tar',
    ],
  ).action(
    async (
      opts: JsonOption & { name: string; package?: string[]; run?: string[]; image?: string; wait?: boolean },
    ) => {
      if (!opts.image && !opts.package?.length && !opts.run?.length) {
        throw new CliError('Nothing to build.', 'give --package, --run or --image');
      }
      const corral = await client();
      let t = opts.image
        ? await withSpinner('Uploading the image', () =>
            corral.templates.create({ name: opts.name, image: createReadStream(opts.image as string) }),
          )
        : await corral.templates.create({
            name: opts.name,
            packages: opts.package ?? [],
            ...(opts.run ? { run: opts.run } : {}),
          });
      if (opts.wait) t = await withSpinner(`Building ${t.name}`, () => corral.templates.waitUntilReady(t.id));
      if (opts.json) printJson(t);
      else {
        process.stdout.write(`${t.id}\n`);
        process.stderr.write(
          `${t.name}: ${t.status}${t.status === 'building' ? ` (watch: corral templates get ${t.id})` : ''}\n`,
        );
      }
      if (t.status === 'failed')
        throw new CliError(`The build failed: ${t.error ?? 'see its log'}.`, `corral templates get ${t.id}`);
    },
  );

  standard(tpl.command('rm').argument('<id>').description('delete a custom template'), [
    'corral templates rm tpl_…',
  ]).action(async (id: string, opts: JsonOption) => {
    await (await client()).templates.remove(id);
    if (opts.json) printJson({ removed: id });
    else process.stderr.write(`Deleted ${id}\n`);
  });
}
