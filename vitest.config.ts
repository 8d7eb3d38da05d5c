import { defineConfig } from 'vitest/config';

// One run, several projects: the runtime suites need root and real kernels; the server suites
// need the throwaway PostgreSQL and Redis started by test/global-setup.ts.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'runtime',
          include: ['packages/runtime/test/**/*.test.ts'],
          // The crash child is a control plane that local-crash.test.ts spawns and SIGKILLs.
          exclude: process.env.CORRAL_CRASH_STATE ? [] : ['packages/runtime/test/**/*.child.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'server',
          include: ['packages/server/test/**/*.test.ts'],
          globalSetup: ['packages/server/test/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'sdk-cli',
          include: ['packages/sdk/test/**/*.test.ts', 'packages/cli/test/**/*.test.ts'],
          testTimeout: 60_000,
          // The SDK suites start a real server with a real runtime (and sandboxes) in beforeAll.
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
