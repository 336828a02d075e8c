// The worker: runs deliverEvent workflows and the delivery activities on the task queue, and
// (HOOKLINE_WORKER_RELAY, default on) the relay loop in the same process, on the same Temporal
// connection, so each workflow it starts begins on this worker without a matching hop.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { startRole, type RoleContext } from '../roles/start-role';
import { activityDeps } from './activity-deps';
import type { Registry } from 'prom-client';
import { createWorkerMetrics, serveMetrics, type MetricsServer } from '../metrics';
import { installRuntimeLogger, logAttempt, logDeliveryStatus } from './logging';
import { workflowInterceptorModules, workflowPreloadModules } from '../telemetry/bundle';
import { tracing } from '../telemetry';
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
  await startRole(config, {
    role: 'worker',
    poolSize: WORKER_POOL_SIZE + (config.HOOKLINE_WORKER_RELAY ? RELAY_POOL_SIZE : 0),
    // The process, not the SDK, reacts to SIGTERM: the relay must stop claiming before the worker
    // drains (see stopInOrder).
    prepare: (log) => installRuntimeLogger(log, { shutdownSignals: [] }),
    connectTemporal: (c) => NativeConnection.connect({ address: c.TEMPORAL_ADDRESS }),
    stopSignals: STOP_SIGNALS,
    run: runWorkerRole,
  });
}

async function runWorkerRole({ config, pool, temporal: connection, log, stopped }: RoleContext<NativeConnection>): Promise<void> {
  const metrics = createWorkerMetrics();
  const worker = await createHooklineWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    maxConcurrentActivityTaskExecutions: config.HOOKLINE_WORKER_MAX_ACTIVITIES,
    shutdownGraceTimeMs: config.HOOKLINE_WORKER_SHUTDOWN_GRACE_MS,
    workflowBundlePath: config.HOOKLINE_WORKFLOW_BUNDLE,
    activities: {
      ...activityDeps(config, pool),
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
  const metricsServer = await serveWorkerMetrics(config, log, metrics.registry, () => worker.getState() === 'RUNNING');
  try {
    const running = worker.run();
    log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker started');
    // After run(): an eagerly started workflow's first task goes to this worker at once.
    const relay = config.HOOKLINE_WORKER_RELAY
      ? await startRelayLoop({ config, pool, client: clientOn(connection, config.TEMPORAL_NAMESPACE, RELAY_IDENTITY), log, eagerStart: true, onRelayOutcome: metrics.onRelayOutcome })
      : null;
    await stopInOrder(worker, running, relay, stopped);
    log.info('worker stopped');
  } finally {
    await metricsServer?.close();
  }
}

/** /metrics on HOOKLINE_WORKER_METRICS_PORT (0 = off). Observability must not stop delivery: a taken port (two workers on one host) is a warning. */
async function serveWorkerMetrics(config: Config, log: Logger, registry: Registry, ready: () => boolean): Promise<MetricsServer | null> {
  if (config.HOOKLINE_WORKER_METRICS_PORT <= 0) return null;
  try {
    const m = await serveMetrics(registry, config.HOOKLINE_WORKER_METRICS_PORT, config.HOST, ready);
    log.info({ port: m.port }, `worker metrics on http://${config.HOST}:${m.port}/metrics`);
    return m;
  } catch (err) {
    log.warn({ err: (err as Error).message }, `worker metrics not served on port ${config.HOOKLINE_WORKER_METRICS_PORT}; set HOOKLINE_WORKER_METRICS_PORT to a free port (0 = off)`);
    return null;
  }
}

/**
 * Waits for a stop signal (or the worker failing), then stops the relay first (it finishes the
 * batch in hand, whose eagerly started tasks this worker already holds) and then the worker,
 * which drains its in-flight tasks (HOOKLINE_WORKER_SHUTDOWN_GRACE_MS). A worker that stopped
 * polling while the relay still started workflows would only send their first tasks through
 * matching to another worker, but stopping in this order keeps each start's task here.
 */
async function stopInOrder(worker: Worker, running: Promise<void>, relay: RelayLoop | null, stopped: Promise<void>): Promise<void> {
  const failed = running.then(() => null, (err: unknown) => err ?? new Error('worker failed'));
  await Promise.race([stopped, failed]);
  await relay?.stop();
  if (worker.getState() === 'RUNNING') worker.shutdown();
  const err = await failed;
  if (err) throw err;
}
