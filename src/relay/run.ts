// `hookline relay`: one relay process; SIGTERM finishes the batch in hand, then exits.
import type { Config } from '../config';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { createLogger } from '../logger';
import { connectClient } from '../temporal/connection';
import { Relay } from './relay';
import { purgeExpiredIdempotencyKeys } from '../db/events';
import { prepareDataAtRest } from '../at-rest-start';
import { startRetention } from './retention';
import { startTracing, stopTracing } from '../telemetry';

const IDEMPOTENCY_PURGE_INTERVAL_MS = 10 * 60 * 1000;

export async function runRelay(config: Config): Promise<void> {
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    throw new Error('hookline relay needs DATABASE_URL and TEMPORAL_ADDRESS (or run `hookline dev`)');
  }
  const log = createLogger(config, 'relay');
  // Before the Temporal client is made: tracing adds its interceptors.
  if (startTracing('relay')) log.info('tracing on: exporting spans over OTLP');
  const pool = createPool(config.DATABASE_URL, 5);
  // Every role migrates at start (under an advisory lock), so any one of them can come up first.
  await migrate(pool);
  await prepareDataAtRest(pool, config, log);
  const { client, connection } = await connectClient(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const relay = new Relay({
    pool, client, log,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    databaseUrl: config.DATABASE_URL,
    batchSize: config.HOOKLINE_RELAY_BATCH_SIZE,
    pollMs: config.HOOKLINE_RELAY_POLL_MS,
    requestTimeoutMs: config.HOOKLINE_REQUEST_TIMEOUT_MS,
  });
  await relay.start();
  log.info('relay started');
  // Expired Idempotency-Keys are ignored on lookup; this only keeps the table from growing.
  const purge = setInterval(() => {
    purgeExpiredIdempotencyKeys(pool, config.HOOKLINE_IDEMPOTENCY_TTL_HOURS).catch((err) =>
      log.warn({ err: (err as Error).message }, 'could not purge expired idempotency keys'),
    );
  }, IDEMPOTENCY_PURGE_INTERVAL_MS);
  purge.unref();
  const stopRetention = startRetention({ pool, days: config.HOOKLINE_RETENTION_DAYS, log });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  clearInterval(purge);
  stopRetention();
  await relay.stop();
  await connection.close();
  await pool.end();
  await stopTracing();
  log.info('relay stopped');
}
