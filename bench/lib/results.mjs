// bench/RESULTS.md: one section per scenario between markers, so that re-running one scenario
// replaces its own section and keeps the others.
import { readFile, writeFile } from 'node:fs/promises';
import { describeMachine } from './machine.mjs';

const HEADER = `# Corral benchmark results

Written by \`npm run bench\` (bench/run.mjs); do not edit by hand. Each scenario's section
says when, how and on what machine it was measured; re-running one scenario
(\`npm run bench -- <name>\`) replaces only that scenario's section.
`;

const SECTION = /<!-- scenario:([\w-]+) -->\n[\s\S]*?<!-- \/scenario:\1 -->\n?/g;

function cell(value) {
  if (value === null || value === undefined) return '—';
  return String(value).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function formatValue(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && Number.isFinite(value)) {
    return Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : String(value);
  }
  return String(value);
}

/** A Markdown table of result rows. */
export function renderTable(rows) {
  const lines = ['| metric | value | unit | goal | note |', '|---|---:|---|---|---|'];
  for (const r of rows) {
    lines.push(
      `| ${cell(r.metric)} | ${cell(formatValue(r.value))} | ${cell(r.unit)} | ${cell(r.goal)} | ${cell(r.note)} |`,
    );
  }
  return lines.join('\n');
}

/** One scenario's section, markers included. */
export function renderSection(s) {
  return [
    `<!-- scenario:${s.name} -->`,
    `## ${s.name}${s.description ? ` — ${s.description}` : ''}`,
    '',
    `- Date: ${s.date.toISOString().replace(/\.\d+Z$/, 'Z')} (took ${Math.round(s.durationSeconds)} s)`,
    `- Command: \`${s.command}\``,
    `- Machine: ${describeMachine(s.machine)}`,
    `- Load average (1 min) at start / end: ${s.loadBefore} / ${s.loadAfter} (other work on the machine skews the figures)`,
    '',
    renderTable(s.rows),
    '',
    `<!-- /scenario:${s.name} -->`,
    '',
  ].join('\n');
}

/** Replaces (or appends) `section` in the results text, keeping every other section as it was. */
export function mergeResults(existing, section) {
  const sections = new Map();
  for (const match of existing.matchAll(SECTION)) sections.set(match[1], match[0].replace(/\n?$/, '\n'));
  sections.set(section.name, renderSection(section));
  return `${HEADER}\n${[...sections.values()].join('\n')}`;
}

/** Reads RESULTS.md (if any), replaces this scenario's section, writes it back. */
export async function updateResults(file, section) {
  let existing = '';
  try {
    existing = await readFile(file, 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  await writeFile(file, mergeResults(existing, section));
}
