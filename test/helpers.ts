// Test harness on the real parts: a database of its own per test file (copied from the migrated
// template that globalSetup made), the shared Temporal dev server, a worker and relay on a task
// queue of its own, the Fastify app, and real HTTP receivers on 127.0.0.1.
import http from 'node:http';
import path from 'node:path';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import pino from 'pino';
import { buildApp } from '../src/api/app';
import { prepareDataAtRest } from '../src/at-rest-start';
import { loadConfig, type Config } from '../src/config';
import { createPool, type Pool } from '../src/db/pool';
import { verifyWebhook } from '../src/receiver/verify';
import { Relay } from '../src/relay/relay';
import { activityDeps } from '../src/worker/activity-deps';
import { createHooklineWorker } from '../src/worker/worker';
import type { ActivityDeps } from '../activities';
import type { FastifyInstance } from 'fastify';

export const quietLog = pino({ level: 'silent' });

/** Every harness encrypts endpoint secrets at rest, as production does, with this key. */
export const TEST_ENCRYPTION_KEY = randomBytes(32).toString('base64');

// Worker state changes and expected activity failures drown the test report; errors still show.
Runtime.install({ logger: new DefaultLogger('ERROR') });

/** A fresh database copied from the migrated template. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const template = new URL(inject('databaseUrl'));
  const templateName = template.pathname.slice(1);
  const name = `hookline_t_${randomBytes(6).toString('hex')}`;
  const admin = new URL(template);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${templateName}`);
        break;
      } catch (err) {
        // Two files copying the template at the same instant: try again shortly.
        if (attempt > 20 || !/being accessed by other users/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await client.end();
  }
  const url = new URL(template);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => c.end());
    },
  };
}

export interface Harness {
  config: Config;
  pool: Pool;
  app: FastifyInstance;
  client: Client;
  taskQueue: string;
  relay: Relay;
  worker: Worker;
  /** Stops the worker (waits for it to drain) — to simulate a worker going away. */
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  activities?: Partial<ActivityDeps>;
  /** Do not start the relay (tests that drive it by hand). */
  noRelay?: boolean;
  /** Do not start an in-process worker (tests that run it as a child process). */
  noWorker?: boolean;
}

export async function createHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    DATABASE_URL: db.url,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: taskQueue,
    HOOKLINE_ALLOWED_TARGETS: 'loopback',
    HOOKLINE_RELAY_POLL_MS: '200',
    HOOKLINE_REQUEST_TIMEOUT_MS: '3000',
    HOOKLINE_LOG_LEVEL: 'silent',
    HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    ...TEST_RETRY_ENV,
    ...opts.env,
  });
  const pool = createPool(db.url, 10);
  await prepareDataAtRest(pool, config);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS! });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const app = await buildApp({ pool, config, temporal: { client, taskQueue }, logger: false });
  const relay = new Relay({
    pool, client, taskQueue, databaseUrl: db.url, log: quietLog,
    batchSize: config.HOOKLINE_RELAY_BATCH_SIZE, pollMs: config.HOOKLINE_RELAY_POLL_MS,
    requestTimeoutMs: config.HOOKLINE_REQUEST_TIMEOUT_MS,
  });
  if (!opts.noRelay) await relay.start();

  const nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS! });
  let worker!: Worker;
  let running: Promise<void> | null = null;
  const startWorker = async () => {
    worker = await createHooklineWorker({
      connection: nativeConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      activities: { ...activityDeps(config, pool), ...opts.activities },
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    if (!running) return;
    worker.shutdown();
    await running;
    running = null;
  };
  if (!opts.noWorker) await startWorker();

  return {
    config, pool, app, client, taskQueue, relay,
    get worker() {
      return worker;
    },
    stopWorker,
    startWorker,
    async close() {
      await relay.stop();
      await stopWorker();
      await app.close();
      await nativeConnection.close();
      await connection.close();
      await pool.end();
      await db.drop();
    },
  } as Harness;
}

export interface ReceivedRequest {
  /** The request's path and query. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** How to answer the n-th request (0-based); default 200. */
  respond: (req: ReceivedRequest, n: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number };
  close(): Promise<void>;
}

/** A real HTTP receiver on 127.0.0.1 that records every request. */
export async function startReceiver(port = 0): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    port: 0,
    requests: [],
    respond: () => ({ status: 200 }),
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const r: ReceivedRequest = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() };
      const n = receiver.requests.length;
      receiver.requests.push(r);
      const answer = receiver.respond(r, n);
      const send = () => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/webhook`;
  receiver.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 30_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Lets FAST_RETRY's sub-second intervals through the API's 1 s floor (see src/retry.ts). */
export const TEST_RETRY_ENV = { HOOKLINE_MIN_RETRY_INTERVAL_MS: '1' };

/** Short retry policy for tests: hours of backoff become seconds. */
export const FAST_RETRY = {
  initialInterval: '100ms',
  backoffCoefficient: 2,
  maximumInterval: '500ms',
  deadline: '20s',
  deadLetterRetention: '60s',
};

export async function createEndpoint(app: FastifyInstance, body: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/v1/endpoints', payload: body });
  if (res.statusCode !== 201) throw new Error(`create endpoint: ${res.statusCode} ${res.body}`);
  return res.json() as { id: string; secret: string; url: string };
}

export async function sendEvent(app: FastifyInstance, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/v1/events', payload: body, headers });
  if (res.statusCode !== 202) throw new Error(`send event: ${res.statusCode} ${res.body}`);
  return res.json() as { id: string; type: string };
}

/** The API alone (no Temporal: it records but cannot replay) on a database of its own. */
export async function createApiOnly(env: Record<string, string> = {}) {
  const db = await createTestDatabase();
  const pool = createPool(db.url, 5);
  const config = loadConfig({ DATABASE_URL: db.url, HOOKLINE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, ...TEST_RETRY_ENV, ...env });
  await prepareDataAtRest(pool, config);
  const app = await buildApp({ pool, config, temporal: null, logger: false });
  return {
    app,
    pool,
    async close() {
      await app.close();
      await pool.end();
      await db.drop();
    },
  };
}

/** One Hookline role (`worker`, `relay`, `api`) as a real child process on the harness's queue. */
export function spawnRole(
  h: Harness,
  role: 'worker' | 'relay' | 'api',
  env: Record<string, string> = {},
  stdio: StdioOptions = ['ignore', 'inherit', 'inherit'],
): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '../src/cli/main.ts'), role], {
    env: {
      ...process.env,
      DATABASE_URL: h.config.DATABASE_URL,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: h.taskQueue,
      HOOKLINE_ALLOWED_TARGETS: 'loopback',
      HOOKLINE_WORKER_METRICS_PORT: '0',
      HOOKLINE_ENCRYPTION_KEY: h.config.HOOKLINE_ENCRYPTION_KEY ?? '',
      // The run's prebuilt bundle (the same modules, interceptors and preloads as a worker's own):
      // bundling with webpack at start took a child worker well over a minute in a busy full run.
      HOOKLINE_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
      ...TEST_RETRY_ENV,
      ...env,
    },
    stdio,
  });
}

/**
 * A real receiver that answers 200 only to requests the receiver kit verifies with `keys()`
 * (read per request, so a test can move the receiver to new keys), 401 otherwise.
 */
export async function startVerifyingReceiver(keys: () => string[]) {
  const rx = await startReceiver();
  const verdicts: { id: string; ok: boolean }[] = [];
  rx.respond = (req) => {
    try {
      const v = verifyWebhook({ headers: req.headers, rawBody: req.body, secrets: keys() });
      verdicts.push({ id: v.id, ok: true });
      return { status: 200 };
    } catch {
      verdicts.push({ id: String(req.headers['webhook-id']), ok: false });
      return { status: 401 };
    }
  };
  return Object.assign(rx, { verdicts });
}

/**
 * Every string and payload byte in a workflow's history, bytes as UTF-8 and as base64: what the
 * Web UI or an export would show, for asserting that no secret is in it.
 */
export async function workflowHistoryText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const parts: string[] = [];
  const walk = (v: unknown, depth = 0): void => {
    if (depth > 30 || v == null) return;
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'), Buffer.from(v).toString('base64'));
    else if (typeof v === 'string') parts.push(v);
    else if (typeof v === 'object') for (const x of Object.values(v as object)) walk(x, depth + 1);
  };
  walk(history);
  return parts.join('\n');
}
