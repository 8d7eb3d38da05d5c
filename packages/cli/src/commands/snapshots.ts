import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import type { SnapshotInfo } from '@corral/sdk';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { formatBytes, Progress, printJson, printTable, withSpinner } from '../output.js';

function row(s: SnapshotInfo): string[] {
  return [
    s.id,
    s.name,
    s.status,
    s.size_bytes === null ? '-' : formatBytes(s.size_bytes),
    s.template,
    s.created_at,
  ];
}

/** `corral snapshot create|list|restore|download|rm`. */
export function snapshotCommands(program: Command): void {
  const snap = program.command('snapshot').alias('snap').description('snapshots of sandboxes');
  standard(snap, ['corral snapshot create sbx_… --name before-upgrade'], false);

  standard(
    snap
      .command('create')
      .argument('<sandbox-id>')
      .description('snapshot a sandbox')
      .option('-n, --name <name>', 'a name'),
    ['corral snapshot create sbx_… --name before-upgrade'],
  ).action(async (id: string, opts: JsonOption & { name?: string }) => {
    const box = await (await client()).sandboxes.get(id);
    const created = await withSpinner('Taking the snapshot', () =>
      box.snapshots.create(opts.name ? { name: opts.name } : {}),
    );
    if (opts.json) printJson(created);
    else process.stdout.write(`${created.id}\n`);
  });

  standard(snap.command('list').alias('ls').argument('<sandbox-id>').description("a sandbox's snapshots"), [
    'corral snapshot list sbx_…',
  ]).action(async (id: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    const all: SnapshotInfo[] = [];
    for await (const s of await box.snapshots.list()) all.push(s);
    if (opts.json) printJson(all);
    else printTable(['ID', 'NAME', 'STATUS', 'SIZE', 'TEMPLATE', 'CREATED'], all.map(row), 'No snapshots.');
  });

  standard(
    snap
      .command('restore')
      .argument('<snapshot-id>')
      .description('restore a snapshot into a new sandbox (or into --into)')
      .option('--into <sandbox-id>', 'restore in place into this sandbox'),
    ['corral snapshot restore snp_…', 'corral snapshot restore snp_… --into sbx_…'],
  ).action(async (id: string, opts: JsonOption & { into?: string }) => {
    const corral = await client();
    const box = await withSpinner('Restoring', () => corral.snapshots.restore(id, { sandboxId: opts.into }));
    if (opts.json) printJson(box.info);
    else process.stdout.write(`${box.id}\n`);
  });

  standard(
    snap
      .command('download')
      .argument('<snapshot-id>')
      .description('download the archive of a snapshot')
      .option('-o, --output <file>', 'where to write it (default: <snapshot-id>.tar)')
      .option('-q, --quiet', 'no progress bar'),
    ['corral snapshot download snp_… -o backup.tar'],
  ).action(async (id: string, opts: JsonOption & { output?: string; quiet?: boolean }) => {
    const corral = await client();
    const info = await corral.snapshots.get(id);
    const output = opts.output ?? `${id}.tar`;
    const progress = new Progress(`${id} → ${output}`, info.size_bytes, opts.quiet || opts.json === true);
    const stream = await corral.snapshots.download(id);
    await pipeline(
      Readable.fromWeb(stream as NodeWebStream),
      new Transform({
        transform(chunk: Buffer, _e, done) {
          progress.add(chunk.length);
          done(null, chunk);
        },
      }),
      createWriteStream(output),
    );
    progress.done();
    if (opts.json) printJson({ id, output, bytes: progress.transferred });
    else process.stderr.write(`Wrote ${output} (${formatBytes(progress.transferred)})\n`);
  });

  standard(snap.command('rm').argument('<snapshot-id>').description('delete a snapshot'), [
    'corral snapshot rm snp_…',
  ]).action(async (id: string, opts: JsonOption) => {
    await (await client()).snapshots.remove(id);
    if (opts.json) printJson({ removed: id });
    else process.stderr.write(`Deleted ${id}\n`);
  });
}
