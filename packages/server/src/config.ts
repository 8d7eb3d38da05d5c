import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { PLAN_IDS } from './plans.js';

/**
 * Every setting, with its environment variable, its default and the expected form that an
 * error message names. The schema is the one source of the defaults.
 */
export const ConfigSchema = Type.Object({
  port: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 8080,
    env: 'CORRAL_PORT',
    expected: 'an integer 1-65535',
  }),
  host: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    env: 'CORRAL_HOST',
    expected: 'a host name or IP address',
  }),
  dataDir: Type.String({
    minLength: 1,
    default: './data',
    env: 'CORRAL_DATA_DIR',
    expected: 'a directory path',
  }),
  databaseUrl: Type.Optional(
    Type.String({
      pattern: '^(postgres|postgresql|sqlite):',
      env: 'DATABASE_URL',
      expected: 'a postgres://… URL or sqlite:<path>',
    }),
  ),
  redisUrl: Type.Optional(
    Type.String({ pattern: '^rediss?://', env: 'REDIS_URL', expected: 'a redis://… URL' }),
  ),
  defaultPlan: Type.Enum(PLAN_IDS, {
    default: 'team',
    env: 'CORRAL_DEFAULT_PLAN',
    expected: `one of ${PLAN_IDS.join(', ')}`,
  }),
  jwtSecret: Type.Optional(
    Type.String({ minLength: 32, env: 'CORRAL_JWT_SECRET', expected: 'a secret of at least 32 characters' }),
  ),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    env: 'CORRAL_LOG_LEVEL',
    expected: 'one of fatal, error, warn, info, debug, trace, silent',
  }),
  bodyLimitBytes: Type.Integer({
    minimum: 1024,
    maximum: 1024 * 1024 * 1024,
    default: 1024 * 1024,
    env: 'CORRAL_BODY_LIMIT_BYTES',
    expected: 'an integer number of bytes 1024-1073741824',
  }),
  publicUrl: Type.Optional(
    Type.String({ pattern: '^https?://[^\\s]+$', env: 'CORRAL_PUBLIC_URL', expected: 'an http(s):// URL' }),
  ),
  previewDomain: Type.String({
    pattern: '^[A-Za-z0-9.-]+$',
    default: 'localhost',
    env: 'CORRAL_PREVIEW_DOMAIN',
    expected: 'a domain name',
  }),
  previewTimeoutSeconds: Type.Integer({
    minimum: 0,
    maximum: 86_400,
    default: 300,
    env: 'CORRAL_PREVIEW_TIMEOUT_SECONDS',
    expected:
      'an integer number of seconds 0-86400 (how long a preview app may take to start answering; 0 = no limit)',
  }),
  sshPort: Type.Integer({
    minimum: 0,
    maximum: 65_535,
    default: 2222,
    env: 'CORRAL_SSH_PORT',
    expected: 'an integer 0-65535 (0 turns the SSH gateway off)',
  }),
  trustProxy: Type.Boolean({ default: false, env: 'CORRAL_TRUST_PROXY', expected: 'true or false' }),
  sessionCleanupIntervalSeconds: Type.Integer({
    minimum: 1,
    default: 900,
    env: 'CORRAL_SESSION_CLEANUP_INTERVAL_SECONDS',
    expected: 'a positive integer number of seconds',
  }),
  registerLimitPerHour: Type.Integer({
    minimum: 1,
    default: 20,
    env: 'CORRAL_REGISTER_LIMIT_PER_HOUR',
    expected: 'a positive integer (registrations per hour per client IP)',
  }),
  loginLimitPerMinute: Type.Integer({
    minimum: 1,
    default: 60,
    env: 'CORRAL_LOGIN_LIMIT_PER_MINUTE',
    expected: 'a positive integer (login attempts per minute per client IP)',
  }),
  tokenLimitPerMinute: Type.Integer({
    minimum: 1,
    default: 60,
    env: 'CORRAL_TOKEN_LIMIT_PER_MINUTE',
    expected: 'a positive integer (token exchanges per minute per client IP)',
  }),
  isolation: Type.Enum(['local', 'gvisor'], {
    default: 'local',
    env: 'CORRAL_ISOLATION',
    expected: 'local or gvisor',
  }),
  templateDir: Type.String({
    minLength: 1,
    default: '/var/cache/corral/templates',
    env: 'CORRAL_TEMPLATE_DIR',
    expected: 'a directory path (built templates, shared by every data directory on the machine)',
  }),
  networkBridge: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,15}$',
    default: 'corral0',
    env: 'CORRAL_NETWORK_BRIDGE',
    expected: 'a network interface name of 1-15 characters',
  }),
  networkSubnet: Type.String({
    pattern: '^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$',
    default: '100.100.0.0/16',
    env: 'CORRAL_NETWORK_SUBNET',
    expected: 'an IPv4 CIDR such as 100.100.0.0/16',
  }),
  networkTable: Type.String({
    pattern: '^[a-z][a-z0-9_]{0,30}$',
    default: 'corral',
    env: 'CORRAL_NETWORK_TABLE',
    expected: 'an nftables table name (lowercase letters, digits, _)',
  }),
  secretsKey: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9+/=_-]{43,88}$',
      env: 'CORRAL_SECRETS_KEY',
      expected: 'a 32-byte key in base64 or base64url (generated into <data>/secrets/env.key when unset)',
    }),
  ),
  execOutputLimitBytes: Type.Integer({
    minimum: 1024,
    maximum: 256 * 1024 * 1024,
    default: 10 * 1024 * 1024,
    env: 'CORRAL_EXEC_OUTPUT_LIMIT_BYTES',
    expected: 'an integer number of bytes 1024-268435456 (per stream, synchronous exec)',
  }),
  fileUploadLimitBytes: Type.Integer({
    minimum: 1024,
    default: 10 * 1024 * 1024 * 1024,
    env: 'CORRAL_FILE_UPLOAD_LIMIT_BYTES',
    expected: 'an integer number of bytes (largest file or archive upload)',
  }),
  jobIntervalSeconds: Type.Number({
    exclusiveMinimum: 0,
    default: 5,
    env: 'CORRAL_JOB_INTERVAL_SECONDS',
    expected: 'a positive number of seconds (how often expiry and idle timeouts are checked)',
  }),
});

/** The raw settings, as the schema describes them (also the shape of the optional JSON file). */
export type ConfigInput = Static<typeof ConfigSchema>;

/** Where the store lives: a SQLite file (the embedded default) or a PostgreSQL server. */
export type DatabaseConfig = { driver: 'sqlite'; path: string } | { driver: 'postgres'; url: string };

/** The resolved, frozen configuration every part of the server reads. */
export interface Config extends Readonly<Omit<ConfigInput, 'jwtSecret' | 'publicUrl'>> {
  readonly dataDir: string;
  readonly database: DatabaseConfig;
  readonly jwtSecret: string;
  readonly publicUrl: string;
}

/** A configuration error; `message` is the one line printed before exiting 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Source = Record<string, unknown>;
type PropertyMeta = { env: string; expected: string; type?: string };

function convert(schema: PropertyMeta, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const text = raw.trim();
  if (schema.type === 'integer') return /^-?\d+$/.test(text) ? Number(text) : raw;
  if (schema.type === 'number') return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : raw;
  if (schema.type === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(text)) return true;
    if (/^(false|0|no|off)$/i.test(text)) return false;
    return raw;
  }
  return text;
}

function readFile(path: string): Source {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      `CORRAL_CONFIG_FILE must name a readable JSON file (got "${path}": ${(err as Error).message})`,
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`CORRAL_CONFIG_FILE must contain a JSON object (got "${path}")`);
  }
  return parsed as Source;
}

/** Reads the JWT secret from `<data>/secrets/jwt.key`, creating it (0600) on first start. */
function jwtSecretFromDataDir(dataDir: string): string {
  const dir = join(dataDir, 'secrets');
  const file = join(dir, 'jwt.key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}

function readOrCreateJwtSecret(dataDir: string): string {
  try {
    const secret = jwtSecretFromDataDir(dataDir);
    if (secret.length < 32) throw new Error('the stored secret is shorter than 32 characters');
    return secret;
  } catch (err) {
    throw new ConfigError(
      `CORRAL_DATA_DIR must be a writable directory holding secrets/jwt.key (got ${JSON.stringify(dataDir)}: ${(err as Error).message})`,
    );
  }
}

function resolveDatabase(url: string | undefined, dataDir: string): DatabaseConfig {
  if (!url) return { driver: 'sqlite', path: join(dataDir, 'corral.db') };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    return { driver: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  return { driver: 'postgres', url };
}

/**
 * Parses the configuration once: defaults from the schema, then the JSON file named by
 * `CORRAL_CONFIG_FILE` (keys as in ConfigInput or as the env names), then the environment,
 * then `overrides` (for tests). Throws ConfigError with one line naming the bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<ConfigInput> = {}): Config {
  const file = env.CORRAL_CONFIG_FILE ? readFile(env.CORRAL_CONFIG_FILE) : {};
  const values: Source = {};
  for (const [key, property] of Object.entries(ConfigSchema.properties)) {
    const meta = property as unknown as PropertyMeta & { default?: unknown };
    const envValue = env[meta.env];
    const fromEnv = envValue !== undefined && envValue !== '';
    const raw =
      key in overrides
        ? overrides[key as keyof ConfigInput]
        : fromEnv
          ? envValue
          : (file[key] ?? file[meta.env]);
    if (raw === undefined) {
      if (meta.default !== undefined) values[key] = meta.default;
      continue;
    }
    const value = convert(meta, raw);
    if (!Value.Check(property, value)) {
      const where = key in overrides || fromEnv ? meta.env : `${meta.env} (from ${env.CORRAL_CONFIG_FILE})`;
      throw new ConfigError(`${where} must be ${meta.expected} (got ${JSON.stringify(String(raw))})`);
    }
    values[key] = value;
  }
  const input = values as ConfigInput;
  const dataDir = resolve(input.dataDir);
  const shownHost = input.host === '0.0.0.0' || input.host === '::' ? 'localhost' : input.host;
  const hostPart = shownHost.includes(':') ? `[${shownHost}]` : shownHost;
  const config: Config = {
    ...input,
    dataDir,
    database: resolveDatabase(input.databaseUrl, dataDir),
    jwtSecret: input.jwtSecret ?? readOrCreateJwtSecret(dataDir),
    publicUrl: (input.publicUrl ?? `http://${hostPart}:${input.port}`).replace(/\/+$/, ''),
  };
  return Object.freeze(config);
}
