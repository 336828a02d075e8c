// vitest globalSetup: once per run, on real parts —
//   (a) one Temporal dev server (in-memory, no UI) on free ports, search attributes registered;
//   (b) a fresh migrated Postgres database hookline_test_<random> on TEST_DATABASE_URL's server
//       (default postgres://postgres@127.0.0.1:5432/postgres), left without connections so test
//       files can use it as a CREATE DATABASE … TEMPLATE;
//   (c) the workflow bundle, built once and written to a temp file;
// and provides them to the tests through inject(). Teardown stops the server, drops the database
// and removes the bundle.
// TEST_TEMPORAL_ADDRESS=host:port uses an already running Temporal server instead of (a).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowInterceptorModules, workflowPreloadModules } from '../src/telemetry/bundle';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { findTemporalCli } from '../src/dev/temporal-cli';
import { findFreePort } from '../src/dev/processes';
import { ensureSearchAttributes, startDevServer, type DevServer } from '../src/dev/temporal-dev-server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the shared Temporal dev server (namespace `default`). */
    temporalAddress: string;
    /** URL of the migrated database of this run (use it as a template; keep no connection open). */
    databaseUrl: string;
    /** File with the bundled workflows/index.ts, for Worker.create({ workflowBundle: { codePath } }). */
    workflowBundlePath: string;
  }
}

const REPO = path.resolve(__dirname, '..');
const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  const teardown = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`[global-setup] teardown step failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };

  try {
    // Everything below is independent; run it concurrently.
    const temporal = (async () => {
      const external = process.env.TEST_TEMPORAL_ADDRESS;
      if (external) {
        await ensureSearchAttributes(external, 'default');
        return external;
      }
      const cliPath = await findTemporalCli({
        toolsDir: path.join(REPO, '.tools'),
        log: (msg) => console.log(`[global-setup] ${msg}`),
      });
      let server: DevServer | null = null;
      // A free port can be taken between the check and the server's bind: retry a few times.
      for (let attempt = 1; !server; attempt++) {
        try {
          server = await startDevServer({ cliPath, port: await findFreePort(), ui: false });
        } catch (err) {
          if (attempt >= 3 || !/already in use/.test(String(err))) throw err;
        }
      }
      const started = server;
      cleanups.push(() => started.stop());
      return started.address;
    })();

    const database = (async () => {
      const adminUrl = process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
      const name = `hookline_test_${randomBytes(6).toString('hex')}`;
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      cleanups.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      const url = withDatabase(adminUrl, name);
      const pool = createPool(url, 1);
      try {
        await migrate(pool);
      } finally {
        await pool.end();
      }
      return url;
    })();

    const bundle = (async () => {
      const workflowsPath = path.join(REPO, 'workflows', 'index.ts');
      if (!existsSync(workflowsPath)) throw new Error(`${workflowsPath} is missing: nothing to bundle`);
      const { code } = await bundleWorkflowCode({
        workflowsPath: require.resolve(workflowsPath),
        workflowInterceptorModules: workflowInterceptorModules(),
        preloadModules: workflowPreloadModules(),
        logger: quietBundlerLogger,
      });
      const dir = mkdtempSync(path.join(tmpdir(), 'hookline-workflows-'));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'workflow-bundle.js');
      writeFileSync(file, code);
      return file;
    })();

    // allSettled first, so a failure in one does not leave another's resources unregistered.
    const results = await Promise.allSettled([temporal, database, bundle]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [temporalAddress, databaseUrl, workflowBundlePath] = results.map(
      (r) => (r as PromiseFulfilledResult<string>).value,
    );

    project.provide('temporalAddress', temporalAddress);
    project.provide('databaseUrl', databaseUrl);
    project.provide('workflowBundlePath', workflowBundlePath);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

// The bundler logs every step at info level through the default Runtime logger; keep the test
// output for warnings and errors.
const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string, meta?: Record<string, unknown>) => console.warn(`[bundler] ${message}`, meta ?? ''),
  error: (message: string, meta?: Record<string, unknown>) => console.error(`[bundler] ${message}`, meta ?? ''),
};
