import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.js';

/** Marks a parameter's slot while the query is compiled; never reaches the database. */
const SLOT_PREFIX = '\u0000corral-slot:';

/** A hot query built and compiled once per database, then run with fresh parameters. */
export type PreparedQuery<P, R> = (db: Kysely<Database>, params: P) => Promise<R[]>;

/**
 * Compiles `build(db, slot)` once per Kysely instance (SQLite and PostgreSQL compile to
 * different SQL) and afterwards only substitutes parameters: building and compiling a Kysely
 * query costs more CPU than running it on the hot path. `slot(name)` stands for a parameter;
 * use it only where a value is bound (`where(col, '=', slot('id'))`), never in SQL text.
 */
export function prepareQuery<P extends Record<string, unknown>, R>(
  build: (db: Kysely<Database>, slot: <K extends keyof P & string>(name: K) => P[K]) => Compilable<R>,
): PreparedQuery<P, R> {
  const compiled = new WeakMap<Kysely<Database>, { query: CompiledQuery<R>; slots: (string | null)[] }>();
  const slot = (name: string) => `${SLOT_PREFIX}${name}` as never;
  return async (db, params) => {
    let entry = compiled.get(db);
    if (entry === undefined) {
      const query = build(db, slot).compile();
      const slots = query.parameters.map((value) =>
        typeof value === 'string' && value.startsWith(SLOT_PREFIX) ? value.slice(SLOT_PREFIX.length) : null,
      );
      entry = { query, slots };
      compiled.set(db, entry);
    }
    const { query, slots } = entry;
    const parameters = slots.map((name, i) => (name === null ? query.parameters[i] : params[name]));
    const result = await db.executeQuery<R>({ ...query, parameters });
    return result.rows;
  };
}
