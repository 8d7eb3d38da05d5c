// EXPERIMENT, not part of the product: preloaded into a Corral server (`node --import`) by the
// api scenario's `sqlite+stmt-cache` row, it memoises better-sqlite3's `prepare(sql)` per
// database. Kysely's SQLite driver prepares every query anew; this row measures what a
// statement cache in the store would gain. Remove the row once the store caches statements.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../packages/server/package.json', import.meta.url));
const Database = require('better-sqlite3');
const prepare = Database.prototype.prepare;
const caches = new WeakMap();

Database.prototype.prepare = function cachedPrepare(sql) {
  let cache = caches.get(this);
  if (!cache) {
    cache = new Map();
    caches.set(this, cache);
  }
  let statement = cache.get(sql);
  if (!statement) {
    statement = prepare.call(this, sql);
    cache.set(sql, statement);
  }
  return statement;
};
