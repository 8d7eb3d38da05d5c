import type { Migration } from 'kysely';
import { m0001_initial } from './0001_initial.js';
import { m0002_sandboxes } from './0002_sandboxes.js';
import { m0003_interactive } from './0003_interactive.js';

/**
 * Every migration, in order. Static (no filesystem scanning) so it works from `dist` and from
 * the TypeScript sources alike. Add a new file `NNNN_name.ts` and one line here; never edit or
 * reorder a migration that has shipped.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_initial': m0001_initial,
  '0002_sandboxes': m0002_sandboxes,
  '0003_interactive': m0003_interactive,
};
