// The relay role's loop (the relay, the idempotency-key purge, retention), started by
// `hookline relay` on a connection of its own and by `hookline worker` on the worker's
// NativeConnection (src/worker/worker.ts), where it asks Temporal for eager starts.
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import { Relay, type RelayOutcome } from './relay';
import { purgeExpiredIdempotencyKeys } from '../db/events';
import { startRetention } from './retention';
import { connectTemporalClient, startRole } from '../roles/start-role';

const IDEMPOTENCY_PURGE_INTERVAL_MS = 10 * 60 * 1000;
/** Connections the relay loop needs at most: its batch transaction, the planning reads, retention. */
export const RELAY_POOL_SIZE = 5;

export interface RelayLoop {
  relay: Relay;
  /** Stops claiming, finishes the batch in hand, stops the purges. */
  stop(): Promise<void>;
}

export interface RelayLoopOptions {
  config: Config;
  pool: Pool;
  client: Client;
  log: Logger;
  /** Ask for Eager Workflow Start: only with a Client on a running Worker's NativeConnection. */
  eagerStart?: boolean;
  /** Counts the relay's outcomes (the worker's metrics). */
  onRelayOutcome?: (outcome: RelayOutcome) => void;
}

export async function startRelayLoop(o: RelayLoopOptions): Promise<RelayLoop> {
  const { config, pool, log } = o;
  const relay = new Relay({
    pool, client: o.client, log,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    databaseUrl: config.DATABASE_URL!,
    batchSize: config.HOOKLINE_RELAY_BATCH_SIZE,
    pollMs: config.HOOKLINE_RELAY_POLL_MS,
    requestTimeoutMs: config.HOOKLINE_REQUEST_TIMEOUT_MS,
    eagerStart: o.eagerStart,
    maxSubscribersPerEvent: config.HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT,
    onOutcome: o.onRelayOutcome,
  });
  await relay.start();
  log.info({ eagerStart: Boolean(o.eagerStart) }, 'relay started');
  // Expired Idempotency-Keys are ignored on lookup; this only keeps the table from growing.
  const purge = setInterval(() => {
    purgeExpiredIdempotencyKeys(pool, config.HOOKLINE_IDEMPOTENCY_TTL_HOURS).catch((err) =>
      log.warn({ err: (err as Error).message }, 'could not purge expired idempotency keys'),
    );
  }, IDEMPOTENCY_PURGE_INTERVAL_MS);
  purge.unref();
  const stopRetention = startRetention({ pool, days: config.HOOKLINE_RETENTION_DAYS, log });
  return {
    relay,
    async stop() {
      clearInterval(purge);
      stopRetention();
      await relay.stop();
      log.info({ started: relay.started, eagerlyStarted: relay.eagerlyStarted }, 'relay stopped');
    },
  };
}

/**
 * `hookline relay`: the relay alone, for deployments that run it apart from the workers
 * (HOOKLINE_WORKER_RELAY=false). Its starts go through Temporal's matching to a worker's poller:
 * eager start needs a worker in the same process. SIGTERM finishes the batch in hand, then exits.
 */
export async function runRelay(config: Config): Promise<void> {
  await startRole(config, {
    role: 'relay',
    poolSize: RELAY_POOL_SIZE,
    connectTemporal: connectTemporalClient,
    async run({ config, pool, temporal, log, stopped }) {
      const loop = await startRelayLoop({ config, pool, client: temporal.client, log });
      await stopped;
      await loop.stop();
    },
  });
}
