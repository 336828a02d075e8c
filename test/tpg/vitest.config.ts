// Tests that need the Temporal server on Postgres that scripts/test-temporal-postgres.sh starts
// (and may kill it): named *.tpg.ts so plain `npm test` (test/**/*.test.ts) never picks them up.
// No globalSetup: these tests stand up their own database and roles.
import vitestConfig = require('vitest/config');

export = vitestConfig.defineConfig({
  test: {
    root: `${__dirname}/../..`,
    include: ['test/tpg/**/*.tpg.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
