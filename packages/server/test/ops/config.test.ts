import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'corral-config-'));
}

describe('loadConfig', () => {
  it('applies the defaults: loopback, port 8080, SQLite in the data dir, team plan', () => {
    const dataDir = freshDir();
    const config = loadConfig({ CORRAL_DATA_DIR: dataDir });
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir,
      database: { driver: 'sqlite', path: join(dataDir, 'corral.db') },
      defaultPlan: 'team',
      logLevel: 'info',
      bodyLimitBytes: 1024 * 1024,
      previewDomain: 'localhost',
      trustProxy: false,
      publicUrl: 'http://127.0.0.1:8080',
    });
    expect(config.redisUrl).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('generates the JWT secret once into <data>/secrets/jwt.key (0600) and reuses it', () => {
    const dataDir = freshDir();
    const first = loadConfig({ CORRAL_DATA_DIR: dataDir });
    const file = join(dataDir, 'secrets', 'jwt.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(loadConfig({ CORRAL_DATA_DIR: dataDir }).jwtSecret).toBe(first.jwtSecret);
    const given = loadConfig({ CORRAL_DATA_DIR: freshDir(), CORRAL_JWT_SECRET: 's'.repeat(40) });
    expect(given.jwtSecret).toBe('s'.repeat(40));
  });

  it('reads every variable from the environment', () => {
    const config = loadConfig({
      CORRAL_PORT: '9000',
      CORRAL_HOST: '0.0.0.0',
      CORRAL_DATA_DIR: freshDir(),
      DATABASE_URL: 'postgres://u@db.example:5432/corral',
      REDIS_URL: 'redis://127.0.0.1:6379',
      CORRAL_DEFAULT_PLAN: 'free',
      CORRAL_JWT_SECRET: 'x'.repeat(32),
      CORRAL_LOG_LEVEL: 'debug',
      CORRAL_BODY_LIMIT_BYTES: '2048',
      CORRAL_PUBLIC_URL: 'https://corral.example.com/',
      CORRAL_PREVIEW_DOMAIN: 'preview.example.com',
      CORRAL_TRUST_PROXY: 'true',
    });
    expect(config).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      database: { driver: 'postgres', url: 'postgres://u@db.example:5432/corral' },
      redisUrl: 'redis://127.0.0.1:6379',
      defaultPlan: 'free',
      logLevel: 'debug',
      bodyLimitBytes: 2048,
      publicUrl: 'https://corral.example.com',
      previewDomain: 'preview.example.com',
      trustProxy: true,
    });
    expect(loadConfig({ CORRAL_HOST: '0.0.0.0', CORRAL_JWT_SECRET: 'x'.repeat(32) }).publicUrl).toBe(
      'http://localhost:8080',
    );
  });

  it('reads CORRAL_CONFIG_FILE; the environment wins over it', () => {
    const dir = freshDir();
    const file = join(dir, 'corral.json');
    writeFileSync(
      file,
      JSON.stringify({ port: 7000, defaultPlan: 'pro', CORRAL_LOG_LEVEL: 'warn', dataDir: dir }),
    );
    const config = loadConfig({ CORRAL_CONFIG_FILE: file, CORRAL_PORT: '7001' });
    expect(config).toMatchObject({ port: 7001, defaultPlan: 'pro', logLevel: 'warn', dataDir: dir });
  });

  it.each([
    [{ CORRAL_PORT: 'abc' }, 'CORRAL_PORT must be an integer 1-65535 (got "abc")'],
    [{ CORRAL_PORT: '70000' }, 'CORRAL_PORT must be an integer 1-65535 (got "70000")'],
    [{ CORRAL_DEFAULT_PLAN: 'gold' }, 'CORRAL_DEFAULT_PLAN must be one of free, pro, team (got "gold")'],
    [{ CORRAL_TRUST_PROXY: 'maybe' }, 'CORRAL_TRUST_PROXY must be true or false (got "maybe")'],
    [{ CORRAL_BODY_LIMIT_BYTES: '1mb' }, 'CORRAL_BODY_LIMIT_BYTES must be'],
    [
      { DATABASE_URL: 'mysql://x' },
      'DATABASE_URL must be a postgres://… URL or sqlite:<path> (got "mysql://x")',
    ],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL must be a redis://… URL'],
    [{ CORRAL_JWT_SECRET: 'short' }, 'CORRAL_JWT_SECRET must be a secret of at least 32 characters'],
    [{ CORRAL_LOG_LEVEL: 'loud' }, 'CORRAL_LOG_LEVEL must be one of'],
    [{ CORRAL_PUBLIC_URL: 'ftp://x' }, 'CORRAL_PUBLIC_URL must be an http(s):// URL'],
    [{ CORRAL_CONFIG_FILE: '/nonexistent/corral.json' }, 'CORRAL_CONFIG_FILE must name a readable JSON file'],
  ])('rejects %j with one line naming the variable', (env, message) => {
    let error: unknown;
    try {
      loadConfig({ CORRAL_JWT_SECRET: 'x'.repeat(32), ...env });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain('\n');
  });
});
