import { createHash } from 'node:crypto';
import { RuntimeError } from '../errors.js';
import { BASE_PACKAGES, DEFAULT_SUITE } from './builtins.js';
import type { TemplateDefinition } from './interface.js';

/** Bumped whenever the way trees are built changes, so old trees are not reused for new ids. */
export const TEMPLATE_FORMAT_VERSION = 1;
/** Template ids: `tpl_` + 24 hex chars. */
export const TEMPLATE_ID_PATTERN = /^tpl_[0-9a-f]{24}$/;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// Debian package names (policy 5.6.1), optionally with :arch and =version or /release.
const PACKAGE_PATTERN = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:[=/][A-Za-z0-9.+~:-]+)?$/;
const SUITE_PATTERN = /^[a-z][a-z0-9-]{1,31}$/;

/** A definition with every default filled in: what gets hashed and built. */
export interface NormalizedDefinition {
  name: string;
  suite: string;
  /** Base packages plus the definition's, sorted and deduplicated. */
  packages: string[];
  run: string[];
}

/** Check a definition and fill in its defaults; TEMPLATE_INVALID on bad input. */
export function normalizeDefinition(definition: TemplateDefinition): NormalizedDefinition {
  const invalid = (message: string, details: Record<string, unknown>) =>
    new RuntimeError('TEMPLATE_INVALID', message, details);
  if (typeof definition?.name !== 'string' || !NAME_PATTERN.test(definition.name)) {
    throw invalid('template name must be 1-64 letters, digits, "_", "." or "-"', { name: definition?.name });
  }
  const suite = definition.suite ?? DEFAULT_SUITE;
  if (typeof suite !== 'string' || !SUITE_PATTERN.test(suite))
    throw invalid('invalid Debian suite', { suite });
  if (!Array.isArray(definition.packages)) throw invalid('packages must be an array', {});
  for (const pkg of definition.packages) {
    if (typeof pkg !== 'string' || !PACKAGE_PATTERN.test(pkg)) {
      throw invalid(`invalid Debian package name: ${String(pkg)}`, { package: pkg });
    }
  }
  const run = definition.run ?? [];
  if (!Array.isArray(run) || run.some((step) => typeof step !== 'string' || step.trim() === '')) {
    throw invalid('run must be an array of non-empty shell commands', {});
  }
  const packages = [...new Set([...BASE_PACKAGES, ...definition.packages])].sort();
  return { name: definition.name, suite, packages, run: [...run] };
}

/** Content address of a build recipe: `tpl_` + the first 24 hex chars of sha256(canonical JSON). */
export function templateId(recipe: Record<string, unknown>): string {
  const canonical = canonicalJson({ format: TEMPLATE_FORMAT_VERSION, ...recipe });
  return `tpl_${createHash('sha256').update(canonical).digest('hex').slice(0, 24)}`;
}

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
