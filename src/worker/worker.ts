// The worker: runs deliverEvent workflows and the delivery activities on the task queue, and
// (HOOKLINE_WORKER_RELAY, default on) the relay loop in the same process, on the same Temporal
// connection, so each workflow it starts begins on this worker without a matching hop.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import type { Config } from '../config';
import { createPool } from '../db/pool';
import type { GateSettings } from '../db/gate';
import { migrate } from '../db/migrate';
import { prepareDataAtRest } from '../at-rest-start';
import { createLogger } from '../logger';
import { createWorkerMetrics, serveMetrics, type MetricsServer } from '../metrics';
import { targetPolicyFromConfig } from '../net/address-policy';
import { installRuntimeLogger, logAttempt, logDeliveryStatus } from './logging';
import { workflowInterceptorModules, workflowPreloadModules } from '../telemetry/bundle';
import { startTracing, stopTracing, tracing } from '../telemetry';
import { clientOn } from '../temporal/connection';
import { RELAY_POOL_SIZE, startRelayLoop, type RelayLoop } from '../relay/run';

export interface HooklineWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: ActivityDeps;
  /** Prebuilt workflow bundle (tests build it once); otherwise workflows are bundled at start. */
  workflowBundlePath?: string;
  maxConcurrentActivityTaskExecutions?: number;
  /** How long shutdown waits for in-flight tasks before cancelling them (HOOKLINE_WORKER_SHUTDOWN_GRACE_MS). */
  shutdownGraceTimeMs?: number;
}

export async function createHooklineWorker(o: HooklineWorkerOptions): Promise<Worker> {
  const options: WorkerOptions = {
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: createActivities(o.activities),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivityTaskExecutions ?? 200,
    // Unset (in-process tests): the SDK's default, cancel in-flight tasks at once.
    ...(o.shutdownGraceTimeMs !== undefined ? { shutdownGraceTime: o.shutdownGraceTimeMs } : {}),
    ...workflowSource(o.workflowBundlePath),
    ...tracingOptions(),
  };
  // Bundling at start: the same interceptor and preloaded modules as every prebuilt bundle (telemetry/bundle).
  if (options.workflowsPath) {
    options.interceptors = { ...options.interceptors, workflowModules: workflowInterceptorModules() };
    options.bundlerOptions = { preloadModules: workflowPreloadModules() };
  }
  return Worker.create(options);
}

/**
 * Tracing on: the activity span interceptors and the sink that exports the spans made inside
 * workflows. Off: only a sink that drops them, for a workflow started by a traced relay while
 * this worker traces nothing (the sandbox would otherwise warn of an unregistered sink).
 */
function tracingOptions(): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const t = tracing();
  if (t) return t.workerOptions();
  return { sinks: { exporter: { export: { fn: () => {} } } } };
}

// `npm run build` writes the bundle next to the compiled code (dist/workflow-bundle.js): a
// production worker starts without webpack. From the sources, workflows are bundled at start.
const PREBUILT_BUNDLE = path.join(__dirname, '../../workflow-bundle.js');

function workflowSource(bundlePath?: string): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const codePath = bundlePath ?? (existsSync(PREBUILT_BUNDLE) ? PREBUILT_BUNDLE : undefined);
  return codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../../workflows') };
}

/** The endpoint gate's settings from the environment (src/db/gate.ts). */
export function gateSettings(config: Config): GateSettings {
  return {
    defaultMaxInFlight: config.HOOKLINE_ENDPOINT_MAX_IN_FLIGHT,
    failureThreshold: config.HOOKLINE_CIRCUIT_FAILURE_THRESHOLD,
    probeIntervalMs: config.HOOKLINE_CIRCUIT_PROBE_INTERVAL_MS,
    probeMaxIntervalMs: config.HOOKLINE_CIRCUIT_PROBE_MAX_INTERVAL_MS,
    autoDisableAfterMs: config.HOOKLINE_AUTO_DISABLE_AFTER_MS,
  };
}

// Pool connections: the activities' (attempt records, the endpoint gate) and, when the relay runs
// here too, the relay loop's own (src/relay/run.ts), as the two processes had before.
const WORKER_POOL_SIZE = 20;
// The relay's client identity. Temporal records the start request's identity on the first
// WorkflowTaskStarted of an eagerly started workflow (a polled task shows the worker's
// `<pid>@<host>`), so the history and the Web UI show which starts skipped matching.
const RELAY_IDENTITY = `${process.pid}@${os.hostname()} relay (eager start)`;
// The signals the SDK's Runtime would stop workers on by default; here the process handles them.
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'];

export async function runWorker(config: Config): Promise<void> {
  const log = createLogger(config, 'worker');
  if (!config.DATABASE_URL || !config.TEMPORAL_ADDRESS) {
    throw new Error('hookline worker needs DATABASE_URL and TEMPORAL_ADDRESS (or run `hookline dev`)');
  }
  // The process, not the SDK, reacts to SIGTERM: the relay must stop claiming before the worker
  // drains (see stopInOrder).
  installRuntimeLogger(log, { shutdownSignals: [] });
  if (startTracing('worker')) log.info('tracing on: exporting spans over OTLP');
  const metrics = createWorkerMetrics();
  const pool = createPool(config.DATABASE_URL, WORKER_POOL_SIZE + (config.HOOKLINE_WORKER_RELAY ? RELAY_POOL_SIZE : 0));
  // Every role migrates at start (under an advisory lock), so any one of them can come up first.
  await migrate(pool);
  await prepareDataAtRest(pool, config, log);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  let metricsServer: MetricsServer | null = null;
  try {
    const worker = await createHooklineWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      maxConcurrentActivityTaskExecutions: config.HOOKLINE_WORKER_MAX_ACTIVITIES,
      shutdownGraceTimeMs: config.HOOKLINE_WORKER_SHUTDOWN_GRACE_MS,
      workflowBundlePath: config.HOOKLINE_WORKFLOW_BUNDLE,
      activities: {
        pool,
        requestTimeoutMs: config.HOOKLINE_REQUEST_TIMEOUT_MS,
        connectTimeoutMs: config.HOOKLINE_CONNECT_TIMEOUT_MS,
        gate: gateSettings(config),
        responseBodyMaxBytes: config.HOOKLINE_RESPONSE_BODY_MAX_BYTES,
        targetPolicy: targetPolicyFromConfig(config),
        onAttempt: (a) => {
          metrics.onAttempt(a);
          logAttempt(log, a);
        },
        onDeliveryStatus: (s) => {
          metrics.onDeliveryStatus(s);
          logDeliveryStatus(log, s);
        },
      },
    });
    metrics.watch(worker);
    if (config.HOOKLINE_WORKER_METRICS_PORT > 0) {
      // Observability must not stop delivery: a taken port (two workers on one host) is a warning.
      metricsServer = await serveMetrics(metrics.registry, config.HOOKLINE_WORKER_METRICS_PORT, config.HOST, () => worker.getState() === 'RUNNING')
        .then((m) => {
          log.info({ port: m.port }, `worker metrics on http://${config.HOST}:${m.port}/metrics`);
          return m;
        })
        .catch((err: Error) => {
          log.warn({ err: err.message }, `worker metrics not served on port ${config.HOOKLINE_WORKER_METRICS_PORT}; set HOOKLINE_WORKER_METRICS_PORT to a free port (0 = off)`);
          return null;
        });
    }
    const running = worker.run();
    log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker started');
    // After run(): an eagerly started workflow's first task goes to this worker at once.
    const relay = config.HOOKLINE_WORKER_RELAY
      ? await startRelayLoop({ config, pool, client: clientOn(connection, config.TEMPORAL_NAMESPACE, RELAY_IDENTITY), log, eagerStart: true, onRelayOutcome: metrics.onRelayOutcome })
      : null;
    await stopInOrder(worker, running, relay);
    log.info('worker stopped');
  } finally {
    await metricsServer?.close();
    await connection.close();
    await pool.end();
    await stopTracing();
  }
}

/**
 * Waits for a stop signal (or the worker failing), then stops the relay first (it finishes the
 * batch in hand, whose eagerly started tasks this worker already holds) and then the worker,
 * which drains its in-flight tasks (HOOKLINE_WORKER_SHUTDOWN_GRACE_MS). A worker that stopped
 * polling while the relay still started workflows would only send their first tasks through
 * matching to another worker, but stopping in this order keeps each start's task here.
 */
async function stopInOrder(worker: Worker, running: Promise<void>, relay: RelayLoop | null): Promise<void> {
  const failed = running.then(() => null, (err: unknown) => err ?? new Error('worker failed'));
  let onSignal: () => void = () => {};
  const signalled = new Promise<void>((resolve) => (onSignal = resolve));
  for (const s of STOP_SIGNALS) process.once(s, onSignal);
  try {
    await Promise.race([signalled, failed]);
  } finally {
    for (const s of STOP_SIGNALS) process.removeListener(s, onSignal);
  }
  await relay?.stop();
  if (worker.getState() === 'RUNNING') worker.shutdown();
  const err = await failed;
  if (err) throw err;
}
