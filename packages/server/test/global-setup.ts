import type { TestProject } from 'vitest/node';
import { startPostgres, startRedis, type TestService } from './support/services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

/**
 * Starts the real services the server suites run against: a throwaway PostgreSQL cluster
 * (unless DATABASE_URL is set) and a redis-server (unless REDIS_URL is set), both on loopback,
 * removed again when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: TestService[] = [];
  try {
    const pg = process.env.DATABASE_URL ? null : await startPostgres();
    if (pg) started.push(pg);
    const redis = process.env.REDIS_URL ? null : await startRedis();
    if (redis) started.push(redis);
    project.provide('databaseUrl', process.env.DATABASE_URL ?? pg!.url);
    project.provide('redisUrl', process.env.REDIS_URL ?? redis!.url);
  } catch (err) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw err;
  }
  return async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  };
}
