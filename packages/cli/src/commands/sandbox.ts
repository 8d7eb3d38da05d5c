import type { CreateSandboxParams, Sandbox, SandboxInfo, SandboxStatus } from '@corral/sdk';
import { type Command, Option } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { collect, parsePairs, printFields, printJson, printTable, withSpinner } from '../output.js';

function number(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new CliError(`${what} must be a number, got "${value}".`);
    return n;
  };
}

/** One row of `corral sandbox list`. */
function row(info: SandboxInfo): string[] {
  return [
    info.id,
    info.name,
    info.status,
    info.template,
    `${info.resources.cpu}/${info.resources.memory_mb}M`,
    info.created_at,
  ];
}

/** `corral sandbox get` for people. */
export function printSandbox(info: SandboxInfo): void {
  printFields([
    ['id', info.id],
    ['name', info.name],
    ['status', info.status],
    ['template', info.template],
    [
      'resources',
      `cpu ${info.resources.cpu}, memory ${info.resources.memory_mb} MiB, disk ${info.resources.disk_mb} MiB`,
    ],
    [
      'network',
      info.network.mode === 'allowlist'
        ? `allowlist ${(info.network.allow ?? []).join(',')}`
        : info.network.mode,
    ],
    ['ports', info.ports.join(', ') || '-'],
    ['metadata', Object.keys(info.metadata).length ? info.metadata : '-'],
    ['created', info.created_at],
    ['expires', info.expires_at],
    ['error', info.error],
  ]);
}

type CreateOptions = JsonOption & {
  template?: string;
  name?: string;
  env?: string[];
  metadata?: string[];
  cpu?: number;
  memory?: number;
  disk?: number;
  timeout?: number;
  port?: number[];
  network?: 'internet' | 'none' | 'allowlist';
  allow?: string[];
};

/** The create body from the command line's options. */
function createParams(opts: CreateOptions): CreateSandboxParams {
  const params: CreateSandboxParams = {};
  if (opts.template) params.template = opts.template;
  if (opts.name) params.name = opts.name;
  const env = parsePairs(opts.env, '--env');
  if (env) params.env = env;
  const metadata = parsePairs(opts.metadata, '--metadata');
  if (metadata) params.metadata = metadata;
  if (opts.cpu !== undefined || opts.memory !== undefined || opts.disk !== undefined) {
    params.resources = { cpu: opts.cpu, memory_mb: opts.memory, disk_mb: opts.disk };
  }
  if (opts.timeout !== undefined) params.timeout_seconds = opts.timeout;
  if (opts.port?.length) params.ports = opts.port;
  if (opts.allow?.length && !opts.network) opts.network = 'allowlist';
  if (opts.network) {
    if (opts.network !== 'allowlist' && opts.allow?.length) {
      throw new CliError(
        '--allow goes with --network allowlist.',
        'use --network allowlist --allow example.com',
      );
    }
    params.network =
      opts.network === 'allowlist' ? { mode: 'allowlist', allow: opts.allow ?? [] } : { mode: opts.network };
  }
  return params;
}

/** `corral sandbox list` (and `corral ls`) on `cmd`. */
function listCommand(cmd: Command): void {
  standard(
    cmd
      .description('list sandboxes')
      .addOption(
        new Option('-s, --status <status>', 'only this status').choices([
          'starting',
          'running',
          'paused',
          'stopping',
          'stopped',
          'hibernated',
          'error',
        ]),
      )
      .option('-m, --metadata <K=V>', 'only with this metadata (repeatable)', collect),
    ['corral sandbox list', 'corral sb ls --status running --json'],
  ).action(async (opts: JsonOption & { status?: SandboxStatus; metadata?: string[] }) => {
    const corral = await client();
    const boxes = await withSpinner('Listing', async () => {
      const all: Sandbox[] = [];
      for await (const box of corral.sandboxes.iterate({
        status: opts.status,
        metadata: parsePairs(opts.metadata, '--metadata'),
      })) {
        all.push(box);
      }
      return all;
    });
    if (opts.json) printJson(boxes.map((b) => b.info));
    else
      printTable(
        ['ID', 'NAME', 'STATUS', 'TEMPLATE', 'CPU/MEM', 'CREATED'],
        boxes.map((b) => row(b.info)),
        'No sandboxes. Create one: corral sandbox create',
      );
  });
}

/** `corral sandbox …` (alias `sb`). */
export function sandboxCommands(program: Command): void {
  const sb = program
    .command('sandbox')
    .alias('sb')
    .description('create, list, inspect and control sandboxes');
  standard(sb, ['corral sandbox create --template python', 'corral sb ls'], false);

  standard(
    sb
      .command('create')
      .description('create a sandbox and wait until it runs')
      .option('-t, --template <template>', 'template id or name (default: the server default)')
      .option('-n, --name <name>', 'a name')
      .option('-e, --env <K=V>', 'environment variable (repeatable)', collect)
      .option('-m, --metadata <K=V>', 'metadata to list and filter by (repeatable)', collect)
      .option('--cpu <cores>', 'CPU cores', number('--cpu'))
      .option('--memory <mib>', 'memory in MiB', number('--memory'))
      .option('--disk <mib>', 'disk in MiB', number('--disk'))
      .option('--timeout <seconds>', 'destroy after this many seconds', number('--timeout'))
      .option(
        '-p, --port <port>',
        'a port to expose as a preview URL (repeatable)',
        (v, prev: number[] = []) => [...prev, number('--port')(v)],
      )
      .addOption(new Option('--network <mode>', 'network access').choices(['internet', 'none', 'allowlist']))
      .option('--allow <host>', 'a host the allowlist lets through (repeatable)', collect),
    [
      'corral sandbox create --template python --name demo --env DEBUG=1',
      'corral sandbox create --network allowlist --allow pypi.org --allow files.pythonhosted.org',
    ],
  ).action(async (opts: CreateOptions) => {
    const corral = await client();
    const box = await withSpinner('Creating the sandbox', () => corral.sandboxes.create(createParams(opts)));
    if (opts.json) printJson(box.info);
    else {
      process.stdout.write(`${box.id}\n`);
      process.stderr.write(`Created ${box.name} (${box.status}). Next: corral exec ${box.id} -- uname -a\n`);
    }
  });

  listCommand(sb.command('list').alias('ls'));
  // `corral ls`: the short form.
  listCommand(program.command('ls'));

  standard(sb.command('get').argument('<id>').description('show a sandbox'), [
    'corral sandbox get sbx_…',
  ]).action(async (id: string, opts: JsonOption) => {
    const box = await (await client()).sandboxes.get(id);
    if (opts.json) printJson(box.info);
    else printSandbox(box.info);
  });

  standard(sb.command('rm').alias('delete').argument('<ids...>').description('destroy sandboxes'), [
    'corral sandbox rm sbx_a sbx_b',
  ]).action(async (ids: string[], opts: JsonOption) => {
    const corral = await client();
    const removed: string[] = [];
    for (const id of ids) {
      await withSpinner(`Destroying ${id}`, async () => (await corral.sandboxes.get(id)).destroy());
      removed.push(id);
      if (!opts.json) process.stderr.write(`Destroyed ${id}\n`);
    }
    if (opts.json) printJson({ removed });
  });

  for (const action of ['start', 'stop', 'pause', 'resume'] as const) {
    standard(sb.command(action).argument('<id>').description(`${action} a sandbox`), [
      `corral sandbox ${action} sbx_…`,
    ]).action(async (id: string, opts: JsonOption) => {
      const corral = await client();
      const box = await withSpinner(`${action} ${id}`, async () =>
        (await corral.sandboxes.get(id))[action](),
      );
      if (opts.json) printJson(box.info);
      else process.stderr.write(`${box.id}: ${box.status}\n`);
    });
  }
}
