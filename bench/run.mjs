#!/usr/bin/env node
// Corral's benchmark runner: `npm run bench [-- <scenario>… | --scenario <name>] [--key=value …]`.
// A scenario is a plug-in, bench/scenarios/<name>.mjs, whose default export is
// `{ name, description, run(ctx) → rows }`, rows being `{ metric, value, unit, goal, note }`.
// Results are printed and written to bench/RESULTS.md; re-running a scenario replaces only
// its own section there (`--no-write`: print only, for trial runs).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { currentLoad, machineInfo } from './lib/machine.mjs';
import { renderTable, updateResults } from './lib/results.mjs';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const RESULTS_FILE = join(BENCH_DIR, 'RESULTS.md');

/** Every scenario plug-in in bench/scenarios (helper modules there export no `run`). */
async function discoverScenarios() {
  const dir = join(BENCH_DIR, 'scenarios');
  const scenarios = new Map();
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.mjs')).sort()) {
    const mod = await import(pathToFileURL(join(dir, file)).href);
    const scenario = mod.default ?? mod;
    if (typeof scenario?.name === 'string' && typeof scenario.run === 'function') {
      scenarios.set(scenario.name, scenario);
    }
  }
  return scenarios;
}

/** `api`, `--scenario api`, `--scenario=api,runtime`, `--list`, and `--key=value` options for ctx.options. */
function parseArgs(argv) {
  const names = [];
  const options = {};
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--list') list = true;
    else if (arg === '--scenario' || arg === '-s') names.push(...String(argv[++i] ?? '').split(','));
    else if (arg.startsWith('--scenario=')) names.push(...arg.slice('--scenario='.length).split(','));
    else if (arg.startsWith('--')) {
      const [key, ...rest] = arg.slice(2).split('=');
      options[key] = rest.length > 0 ? rest.join('=') : 'true';
    } else names.push(...arg.split(','));
  }
  return { names: names.filter(Boolean), options, list };
}

/** The command as the reader would type it. */
function commandLine(argv) {
  const args = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node bench/run.mjs${args ? ` ${args}` : ''}`;
}

const argv = process.argv.slice(2);
const { names, options, list } = parseArgs(argv);
const scenarios = await discoverScenarios();
if (list) {
  for (const s of scenarios.values()) console.log(`${s.name.padEnd(14)} ${s.description ?? ''}`);
  process.exit(0);
}
const unknown = names.filter((n) => !scenarios.has(n));
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; known: ${[...scenarios.keys()].join(', ')}`);
  process.exit(2);
}
const selected = names.length > 0 ? names.map((n) => scenarios.get(n)) : [...scenarios.values()];
const command = commandLine(argv);
const machine = await machineInfo();
let failed = false;

for (const scenario of selected) {
  const log = (line) => console.error(`[${scenario.name}] ${line}`);
  const started = new Date();
  const loadBefore = currentLoad();
  log(`started ${started.toISOString()}`);
  let rows;
  try {
    rows = await scenario.run({ options, log, machine, root: join(BENCH_DIR, '..') });
  } catch (err) {
    failed = true;
    log(`failed: ${err?.stack ?? err}`);
    rows = [
      { metric: 'scenario', value: null, unit: '', goal: '', note: `failed: ${String(err?.message ?? err)}` },
    ];
  }
  const section = {
    name: scenario.name,
    description: scenario.description ?? '',
    date: started,
    durationSeconds: (Date.now() - started.getTime()) / 1000,
    command,
    machine,
    loadBefore,
    loadAfter: currentLoad(),
    rows,
  };
  console.log(`\n## ${scenario.name}\n\n${renderTable(rows)}\n`);
  if (options['no-write'] === 'true') continue;
  await updateResults(RESULTS_FILE, section);
  log(`section written to ${RESULTS_FILE}`);
}
process.exit(failed ? 1 : 0);
