// CommonJS spelling (the package is "type": "commonjs"), so Vite loads it without its
// "ESM syntax in a file loaded as CommonJS" warning.
import vitestConfig = require('vitest/config');

export = vitestConfig.defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Temporal dev server, one migrated database and one workflow bundle for the whole run.
    globalSetup: ['test/global-setup.ts'],
    // Real Temporal, Postgres and HTTP: scenarios take seconds, not milliseconds; tests that spawn
    // role processes need more on a loaded two-core box (a liveness bound, not a timing assert).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Workers and native Temporal connections are happier in child processes than in threads.
    pool: 'forks',
    // Two cores: at most two test files at once, each with its own worker, relay and database.
    maxWorkers: 2,
  },
});
