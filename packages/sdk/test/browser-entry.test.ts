import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');
const BUILTINS = new Set(builtinModules);

/** Every module specifier `file` imports or re-exports, type-only ones included. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(?\s*['"]([^'"]+)['"]/g,
  ];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.push(match[1] as string);
  return found;
}

/** The modules reachable from `entry` (relative imports followed; from a .ts entry, `.js` → `.ts`), and the external ones. */
async function graph(entry: string): Promise<{ files: string[]; external: string[] }> {
  const ext = entry.endsWith('.ts') ? '.ts' : '.js';
  const files = new Set<string>();
  const external = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of specifiers(await readFile(file, 'utf8'))) {
      if (spec.startsWith('.')) queue.push(join(dirname(file), spec.replace(/\.js$/, ext)));
      else external.add(spec);
    }
  }
  return { files: [...files], external: [...external] };
}

describe('sdk: the browser entry', () => {
  it('reaches no Node-only module and no dependency at all', async () => {
    const { files, external } = await graph(join(src, 'index.ts'));
    expect(files.length).toBeGreaterThan(10);
    expect(files.map((f) => f.slice(src.length + 1))).not.toContain('node.ts');
    const nodeOnly = external.filter((spec) => spec.startsWith('node:') || BUILTINS.has(spec));
    expect(nodeOnly, 'Node-only imports on the browser path').toEqual([]);
    expect(external, 'the main entry has no runtime dependency').toEqual([]);
  });

  it('the built entry (dist/index.js, what the package exports) imports nothing either', async () => {
    const dist = resolve(src, '../dist/index.js');
    const { files, external } = await graph(dist);
    expect(files.length).toBeGreaterThan(10);
    expect(files.map((f) => f.slice(dist.length - 'index.js'.length))).not.toContain('node.js');
    expect(external).toEqual([]);
  });

  it('uses no Node-only global on that path (process only through globalThis, guarded)', async () => {
    const { files } = await graph(join(src, 'index.ts'));
    const nodeGlobals = /(?<![.\w])(?:Buffer\.|process\.|require\(|__dirname|__filename|setImmediate\()/;
    for (const file of files) {
      const code = (await readFile(file, 'utf8'))
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      expect(nodeGlobals.exec(code)?.[0], file).toBeUndefined();
    }
  });

  it('the scan sees a Node import when there is one (the node entry)', async () => {
    const { external } = await graph(join(src, 'node.ts'));
    expect(external).toContain('node:stream');
  });
});
