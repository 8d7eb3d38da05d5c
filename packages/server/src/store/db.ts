import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDialectConfig, sql } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './schema.js';

/** Which SQL engine a store runs on. Queries are the same for both. */
export type Dialect = 'sqlite' | 'postgres';

/** An open store: the query builder and its lifecycle. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Applies pending migrations; returns the names applied by this call. */
  migrate(): Promise<string[]>;
  /** Throws when the database cannot answer `select 1`. */
  ping(): Promise<void>;
  /** Closes the connections; the store cannot be used afterwards. */
  close(): Promise<void>;
}

/** Options for opening a store. */
export interface StoreOptions {
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
}

/** The current time as the store keeps timestamps: ISO-8601 UTC with milliseconds. */
export function isoNow(): string {
  return new Date().toISOString();
}

function openSqlite(path: string): Kysely<Database> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new SqliteDatabase(path);
  database.pragma('journal_mode = WAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  // WAL + NORMAL is durable across application crashes; only an OS crash may lose the last commit.
  database.pragma('synchronous = NORMAL');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
}

/** Prepared statements kept per SQLite database; the least recently prepared goes first. */
export const SQLITE_STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver prepares every query anew (13–14% of a request's CPU on the hot path);
 * this hands it better-sqlite3 statements cached by SQL text. Reusing one is safe: the driver
 * runs one query at a time on its single connection, and SQLite re-prepares a statement itself
 * when the schema changes.
 */
function withStatementCache(database: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = statements.get(sqlText);
      if (statement === undefined) {
        statement = database.prepare(sqlText);
        if (statements.size >= SQLITE_STATEMENT_CACHE_SIZE) {
          statements.delete(statements.keys().next().value as string);
        }
        statements.set(sqlText, statement);
      }
      return statement;
    },
  };
}

const INT8_OID = 20;

function openPostgres(url: string, poolSize: number): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // count(*) and other bigint results as numbers, as SQLite returns them, so callers see the same types.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * Opens the store named by `config.database`: a SQLite file (WAL, busy timeout, foreign keys)
 * or a PostgreSQL pool. Does not migrate; call `migrate()` (main does at start-up).
 */
export function openStore(config: { database: DatabaseConfig }, options: StoreOptions = {}): Store {
  const dialect: Dialect = config.database.driver;
  const db =
    config.database.driver === 'sqlite'
      ? openSqlite(config.database.path)
      : openPostgres(config.database.url, options.poolSize ?? 10);
  let closed = false;
  return {
    db,
    dialect,
    migrate: () => migrateToLatest(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
