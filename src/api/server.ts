// `hookline api`: builds the app, listens, and drains on SIGTERM/SIGINT.
import type { Config } from '../config';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { prepareDataAtRest } from '../at-rest-start';
import { createLogger } from '../logger';
import { connectClient } from '../temporal/connection';
import { checkExposure } from './access';
import { buildApp } from './app';
import { startTracing, stopTracing } from '../telemetry';

export async function runApi(config: Config): Promise<void> {
  // First: an API the network can reach without a key must not start by accident.
  for (const warning of checkExposure(config)) console.error(`\n${warning}\n`);
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    throw new Error('hookline api needs DATABASE_URL and TEMPORAL_ADDRESS (or run `hookline dev`)');
  }
  // Before the Temporal client and the app are made: tracing adds interceptors and request hooks.
  startTracing('api');
  const pool = createPool(config.DATABASE_URL, 20);
  // Every role migrates at start (under an advisory lock), so any one of them can come up first.
  await migrate(pool);
  await prepareDataAtRest(pool, config, createLogger(config, 'api'));
  const { client, connection } = await connectClient(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  // Connecting ran the client's call-context AsyncLocalStorage (its connect deadline), and on Node
  // < 24 one that has run keeps async hooks on for every promise, timer and socket write of the
  // process: about 5% of the API's CPU per submitted event (`node:internal/async_hooks` in a
  // profile of the bench's submit phase), for a context only Temporal calls read. Nothing is in
  // flight here, so it goes off; a Temporal call (a replay, a gate wake) turns it on again.
  connection.callContextStorage.disable();
  const app = await buildApp({ pool, config, temporal: { client, taskQueue: config.TEMPORAL_TASK_QUEUE } });
  app.addHook('onClose', async () => {
    await connection.close();
    await pool.end();
    await stopTracing();
  });
  const stop = async () => {
    await app.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await app.listen({ port: config.PORT, host: config.HOST });
}
