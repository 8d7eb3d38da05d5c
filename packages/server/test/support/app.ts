import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { type Config, type ConfigInput, loadConfig } from '../../src/config.js';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { newId } from '../../src/ids.js';
import { createApiKey } from '../../src/services/keys.js';
import { AuditLog, isoNow, openStore, type Store } from '../../src/store/index.js';
import { createTestEngine, TEST_TEMPLATE_DIR, type TestEngine } from './runtime.js';

/** The two store drivers every store-backed suite runs on. */
export const DRIVERS = ['sqlite', 'postgres'] as const;
export type Driver = (typeof DRIVERS)[number];

/** A fresh, empty database for one suite; `drop()` removes it. */
export interface TestDatabase {
  /** Config fragment: `{ dataDir, databaseUrl }`. */
  overrides: Partial<ConfigInput>;
  drop(): Promise<void>;
}

/**
 * A new database on `driver`: a SQLite file in a new temp directory, or a new PostgreSQL
 * database `corral_test_<random>` on the run's throwaway server (`inject('databaseUrl')`).
 */
export async function createTestDatabase(driver: Driver): Promise<TestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'corral-test-'));
  if (driver === 'sqlite') {
    return {
      overrides: { dataDir, databaseUrl: `sqlite:${join(dataDir, 'corral.db')}` },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  const adminUrl = inject('databaseUrl');
  const name = `corral_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    overrides: { dataDir, databaseUrl: url.toString() },
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A config for tests: silent logs, a fixed JWT secret, the given database; env is ignored. */
export function testConfig(overrides: Partial<ConfigInput> = {}): Config {
  // Per-IP limits of the public auth routes are high: suites register many users from one IP.
  return loadConfig(
    {},
    {
      logLevel: 'silent',
      jwtSecret: 'test-secret-'.padEnd(48, 'x'),
      registerLimitPerHour: 100_000,
      loginLimitPerMinute: 100_000,
      tokenLimitPerMinute: 100_000,
      ...overrides,
    },
  );
}

/** What a store suite gets: filled in `beforeAll`, so read it inside tests and hooks. */
export interface StoreContext {
  readonly driver: Driver;
  config: Config;
  store: Store;
  app: App;
  /** The runtime, when the suite asked for one (`runtime: true`). */
  engine: TestEngine;
  /** Inserts a user straight into the store (no password unless given a hash). */
  createUser(input?: {
    email?: string;
    name?: string;
    isAdmin?: boolean;
    passwordHash?: string | null;
  }): Promise<{
    id: string;
    email: string;
  }>;
  /** Inserts a workspace owned by `userId` (who becomes its `owner` member). */
  createWorkspace(
    userId: string,
    input?: { name?: string; plan?: string; personal?: boolean },
  ): Promise<{ id: string }>;
  /**
   * A user, their workspace (owner) and an API key in it with `scopes` (default `*`);
   * `headers` authenticate a request as that key.
   */
  createCaller(input?: { scopes?: string[]; plan?: string; email?: string }): Promise<{
    userId: string;
    workspaceId: string;
    keyId: string;
    key: string;
    headers: { authorization: string };
  }>;
}

/** Options for `describeStores`. */
export interface StoreSuiteOptions {
  /** Config overrides on top of the test defaults (database fields are set for you). */
  config?: Partial<ConfigInput>;
  /** Set false to get a store only (no app is built). */
  app?: boolean;
  /** Give the app a real local runtime (`{network: true}`: with real networking on a test slot). */
  runtime?: boolean | { network: boolean };
}

function engineOptions(runtime: StoreSuiteOptions['runtime']): { network: boolean } | null {
  if (!runtime) return null;
  return runtime === true ? { network: false } : runtime;
}

function makeContext(driver: Driver): StoreContext {
  const ctx = { driver } as StoreContext;
  ctx.createUser = async (input = {}) => {
    const id = newId('usr');
    const email = (input.email ?? `${id}@example.test`).toLowerCase();
    await ctx.store.db
      .insertInto('users')
      .values({
        id,
        email,
        name: input.name ?? 'Test User',
        password_hash: input.passwordHash ?? null,
        is_admin: input.isAdmin ? 1 : 0,
        created_at: isoNow(),
      })
      .execute();
    return { id, email };
  };
  ctx.createWorkspace = async (userId, input = {}) => {
    const id = newId('ws');
    const now = isoNow();
    await ctx.store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('workspaces')
        .values({
          id,
          name: input.name ?? 'Test Workspace',
          plan: input.plan ?? 'team',
          personal: input.personal ? 1 : 0,
          created_by: userId,
          created_at: now,
          deleted_at: null,
        })
        .execute();
      await trx
        .insertInto('members')
        .values({ workspace_id: id, user_id: userId, role: 'owner', created_at: now })
        .execute();
    });
    return { id };
  };
  ctx.createCaller = async (input = {}) => {
    const user = await ctx.createUser(input.email ? { email: input.email } : {});
    const workspace = await ctx.createWorkspace(user.id, input.plan ? { plan: input.plan } : {});
    const audit = ctx.app?.audit ?? new AuditLog(ctx.store.db);
    const created = await createApiKey(
      { store: ctx.store, audit },
      { userId: user.id, workspaceId: workspace.id, name: 'test caller', scopes: input.scopes ?? ['*'] },
    );
    return {
      userId: user.id,
      workspaceId: workspace.id,
      keyId: created.id,
      key: created.key,
      headers: { authorization: `Bearer ${created.key}` },
    };
  };
  return ctx;
}

/**
 * Runs `fn` once per store driver (SQLite file, PostgreSQL database), each inside its own
 * `describe('<name> [driver]')` with a freshly migrated store and a built app (`ctx.app`,
 * use `ctx.app.inject()`), torn down after the suite.
 */
export function describeStores(
  name: string,
  fn: (ctx: StoreContext) => void,
  options: StoreSuiteOptions = {},
): void {
  for (const driver of DRIVERS) {
    describe(`${name} [${driver}]`, () => {
      const ctx = makeContext(driver);
      let database: TestDatabase | undefined;
      beforeAll(async () => {
        database = await createTestDatabase(driver);
        ctx.config = testConfig({ templateDir: TEST_TEMPLATE_DIR, ...options.config, ...database.overrides });
        ctx.store = openStore(ctx.config);
        await ctx.store.migrate();
        const engine = engineOptions(options.runtime);
        if (engine) ctx.engine = await createTestEngine(engine);
        if (options.app !== false) {
          ctx.app = await buildApp({
            config: ctx.config,
            store: ctx.store,
            logger: pino({ level: 'silent' }),
            defaultMetrics: false,
            ...(ctx.engine ? { runtime: ctx.engine.runtime, templates: ctx.engine.templates } : {}),
          });
          await ctx.app.ready();
        }
      });
      afterAll(async () => {
        await ctx.app?.close();
        await ctx.engine?.close();
        await ctx.store?.close();
        await database?.drop();
      });
      fn(ctx);
    });
  }
}

/** A standalone app on a fresh database, for suites that need to add routes or tweak config. */
export interface TestApp {
  app: App;
  store: Store;
  config: Config;
  /** The runtime, when asked for (`runtime: true`). */
  engine: TestEngine | null;
  /** Closes the app, the runtime (destroying its sandboxes) and the store, and drops the database. */
  close(): Promise<void>;
}

/**
 * Builds an app on a fresh, migrated database (SQLite by default). `configure` runs before
 * the app is readied, so a suite can add test-only routes or readiness checks.
 */
export async function createTestApp(
  options: {
    driver?: Driver;
    config?: Partial<ConfigInput>;
    logger?: pino.Logger;
    configure?: (app: App) => void | Promise<void>;
    runtime?: StoreSuiteOptions['runtime'];
  } = {},
): Promise<TestApp> {
  const database = await createTestDatabase(options.driver ?? 'sqlite');
  const config = testConfig({ templateDir: TEST_TEMPLATE_DIR, ...options.config, ...database.overrides });
  const store = openStore(config);
  await store.migrate();
  const engineOpts = engineOptions(options.runtime);
  const engine = engineOpts ? await createTestEngine(engineOpts) : null;
  const app = await buildApp({
    config,
    store,
    logger: options.logger ?? pino({ level: 'silent' }),
    defaultMetrics: false,
    ...(engine ? { runtime: engine.runtime, templates: engine.templates } : {}),
  });
  await options.configure?.(app);
  await app.ready();
  return {
    app,
    store,
    config,
    engine,
    async close() {
      await app.close();
      await engine?.close();
      await store.close();
      await database.drop();
    },
  };
}

/** Alias of `describeStores` for suites that read better as "for each store". */
export const forEachStore = describeStores;

/** What `app.inject()` answers, as far as the error helpers need. */
export interface InjectedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

/**
 * Asserts `res` is exactly the API's error shape — `{error: {code, message, details}, request_id}`
 * with the catalogue's status for the code and `request_id` equal to the X-Request-Id header —
 * and, when given, that the code is `code`. Returns the parsed body.
 */
export function expectError(
  res: InjectedResponse,
  code?: ErrorCode,
): { error: { code: ErrorCode; message: string; details: Record<string, unknown> }; request_id: string } {
  const context = `${res.statusCode} ${res.body.slice(0, 500)}`;
  expect(res.headers['content-type'], context).toMatch(/^application\/json/);
  const body = JSON.parse(res.body);
  expect(Object.keys(body).sort(), context).toEqual(['error', 'request_id']);
  expect(Object.keys(body.error).sort(), context).toEqual(['code', 'details', 'message']);
  expect(typeof body.error.message, context).toBe('string');
  expect(body.error.details !== null && typeof body.error.details === 'object', context).toBe(true);
  expect(Array.isArray(body.error.details), context).toBe(false);
  expect(Object.hasOwn(ERRORS, body.error.code), context).toBe(true);
  expect(ERRORS[body.error.code as ErrorCode].status, context).toBe(res.statusCode);
  expect(body.request_id, context).toBe(res.headers['x-request-id']);
  if (code !== undefined) expect(body.error.code, context).toBe(code);
  return body;
}

/** A user added to a workspace by `addMember`, with an API key there. */
export interface MemberKey {
  userId: string;
  keyId: string;
  key: string;
  headers: { authorization: string };
}

/**
 * Adds a new user to `workspaceId` with `role` and gives them an API key there with `scopes`
 * (default `*`): the user, the key, and the headers that authenticate as it.
 */
export async function addMember(
  ctx: StoreContext,
  workspaceId: string,
  role: string,
  scopes: string[] = ['*'],
): Promise<MemberKey> {
  const user = await ctx.createUser();
  await ctx.store.db
    .insertInto('members')
    .values({ workspace_id: workspaceId, user_id: user.id, role, created_at: isoNow() })
    .execute();
  const key = await createApiKey(
    { store: ctx.store, audit: ctx.app.audit },
    { userId: user.id, workspaceId, name: `${role} key`, scopes },
  );
  return { userId: user.id, keyId: key.id, key: key.key, headers: { authorization: `Bearer ${key.key}` } };
}

/** The headers of a new `role` member's API key in `workspaceId` (see `addMember`). */
export async function memberHeaders(
  ctx: StoreContext,
  workspaceId: string,
  role: string,
  scopes: string[] = ['*'],
): Promise<{ authorization: string }> {
  return (await addMember(ctx, workspaceId, role, scopes)).headers;
}

/** A user who owns a new workspace, with an API key there: what most suites act as. */
export interface OwnerKey {
  userId: string;
  workspaceId: string;
  keyId: string;
  key: string;
  headers: { authorization: string };
}

/**
 * Inserts a user, a workspace they own (plan `team` unless given) and an API key there with
 * `scopes` (default `*`), straight into `store` — for suites holding a TestApp rather than a
 * StoreContext.
 */
export async function createOwnerKey(
  store: Store,
  audit: AuditLog,
  input: { scopes?: string[]; plan?: string; email?: string; isAdmin?: boolean } = {},
): Promise<OwnerKey> {
  const userId = newId('usr');
  const workspaceId = newId('ws');
  const now = isoNow();
  await store.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('users')
      .values({
        id: userId,
        email: (input.email ?? `${userId}@example.test`).toLowerCase(),
        name: 'Test User',
        password_hash: null,
        is_admin: input.isAdmin ? 1 : 0,
        created_at: now,
      })
      .execute();
    await trx
      .insertInto('workspaces')
      .values({
        id: workspaceId,
        name: 'Test Workspace',
        plan: input.plan ?? 'team',
        personal: 0,
        created_by: userId,
        created_at: now,
        deleted_at: null,
      })
      .execute();
    await trx
      .insertInto('members')
      .values({ workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: now })
      .execute();
  });
  const created = await createApiKey(
    { store, audit },
    { userId, workspaceId, name: 'test owner', scopes: input.scopes ?? ['*'] },
  );
  return {
    userId,
    workspaceId,
    keyId: created.id,
    key: created.key,
    headers: { authorization: `Bearer ${created.key}` },
  };
}
