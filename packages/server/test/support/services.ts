/**
 * The real services the server suites start (a throwaway PostgreSQL cluster and redis-server on
 * loopback). One implementation, shared with the benchmark: bench/lib/*.mjs (plain JS, because
 * `npm run bench` runs without a TypeScript loader).
 */
export { freePort } from '../../../../bench/lib/net.mjs';
export { startPostgres } from '../../../../bench/lib/postgres.mjs';
export { startRedis } from '../../../../bench/lib/redis.mjs';

/** A service started for the test run; `stop()` kills it and removes its files. */
export interface TestService {
  url: string;
  stop(): Promise<void>;
}
