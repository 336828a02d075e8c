// The one start-up and shut-down sequence of the production roles (`hookline api|relay|worker`):
// services checked, tracing on, the pool, migrations, data at rest, the role's Temporal
// connection; then the role runs until a stop signal and drains, and whatever was opened is closed
// in `finally`, last opened first — after a failed start too. main.ts prints a thrown error and
// exits 1. Each role says only what differs: pool size, which Temporal connection, what it runs.
import type { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import { createPool, type Pool } from '../db/pool';
import { migrate } from '../db/migrate';
import { prepareDataAtRest } from '../at-rest-start';
import { createLogger, type Logger } from '../logger';
import { connectClient } from '../temporal/connection';
import { startTracing, stopTracing } from '../telemetry';

export type RoleName = 'api' | 'relay' | 'worker';

/** A Config whose services are known to be set. */
export type RoleConfig = Config & { DATABASE_URL: string; TEMPORAL_ADDRESS: string };

export interface RoleContext<T> {
  config: RoleConfig;
  log: Logger;
  pool: Pool;
  temporal: T;
  /** Settles on the first stop signal; the role then drains and returns. */
  stopped: Promise<void>;
}

export interface RoleSpec<T extends { close(): Promise<void> }> {
  role: RoleName;
  poolSize: number;
  /** Before tracing and any Temporal connection (the worker installs the SDK's Runtime here). */
  prepare?(log: Logger): void;
  /** The role's Temporal connection, opened once the database is ready; closed by startRole. */
  connectTemporal(config: RoleConfig): Promise<T>;
  /** Default SIGTERM and SIGINT. */
  stopSignals?: readonly NodeJS.Signals[];
  /** Runs the role until `stopped`, then drains; a throw stops the process with exit code 1. */
  run(ctx: RoleContext<T>): Promise<void>;
}

const DEFAULT_STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

export async function startRole<T extends { close(): Promise<void> }>(config: Config, spec: RoleSpec<T>): Promise<void> {
  const roleConfig = requireServices(spec.role, config);
  const log = createLogger(config, spec.role);
  spec.prepare?.(log);
  // Before any Temporal client or app is made: tracing adds interceptors and request hooks.
  if (startTracing(spec.role)) log.info('tracing on: exporting spans over OTLP');
  const pool = createPool(roleConfig.DATABASE_URL, spec.poolSize);
  let temporal: T | null = null;
  try {
    // Every role migrates at start (under an advisory lock), so any one of them can come up first.
    await migrate(pool);
    await prepareDataAtRest(pool, config, log);
    temporal = await spec.connectTemporal(roleConfig);
    // Until Temporal answers a signal ends the process at once, as it always did; from here on
    // it is the role's to drain.
    const stop = onStopSignal(spec.stopSignals ?? DEFAULT_STOP_SIGNALS);
    try {
      await spec.run({ config: roleConfig, log, pool, temporal, stopped: stop.signalled });
    } finally {
      stop.dispose();
    }
  } finally {
    await temporal?.close();
    await pool.end();
    await stopTracing();
  }
}

/** The one "needs DATABASE_URL" error of the three roles. */
function requireServices(role: RoleName, config: Config): RoleConfig {
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    throw new Error(`hookline ${role} needs DATABASE_URL and TEMPORAL_ADDRESS (or run \`hookline dev\`)`);
  }
  return config as RoleConfig;
}

/**
 * The first of `signals` settles `signalled`, and all listeners go at once: a second signal
 * during the drain has its default effect and ends the process, as before this was shared.
 */
function onStopSignal(signals: readonly NodeJS.Signals[]): { signalled: Promise<void>; dispose(): void } {
  let resolve: () => void = () => {};
  const signalled = new Promise<void>((r) => (resolve = r));
  const dispose = () => signals.forEach((s) => process.removeListener(s, onSignal));
  const onSignal = () => {
    dispose();
    resolve();
  };
  for (const s of signals) process.on(s, onSignal);
  return { signalled, dispose };
}

/** The api's and the relay's Temporal connection: a client, retrying while the server comes up. */
export async function connectTemporalClient(config: RoleConfig): Promise<{ client: Client; connection: Connection; close(): Promise<void> }> {
  const { client, connection } = await connectClient(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  return { client, connection, close: () => connection.close() };
}
