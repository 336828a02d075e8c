// Prometheus metrics. The API and the worker are separate processes, so each serves its own:
//
//   API    GET /metrics  — computed from Postgres at scrape time, so every API replica reports
//                          the same truth and nothing is lost when a process restarts: the
//                          outbox backlog and its oldest event's age (the relay's health),
//                          deliveries in progress and open dead letters per endpoint; plus
//                          the API's own HTTP traffic.
//   worker GET /metrics on HOOKLINE_WORKER_METRICS_PORT — what only the process that POSTs
//                          sees: attempts by endpoint and outcome, attempt latency, attempts
//                          per delivery, delivery outcomes, and the worker's own health.
//
// Labels are bounded: endpoint ids, outcomes, route templates. Never URLs (they may carry
// tokens), event ids or status texts, which would grow without bound.
//
// Tenants: a tenant_id label goes only where it adds no series — next to endpoint_id (every
// endpoint has exactly one tenant), so `sum by (tenant_id)` works on the API's per-endpoint
// gauges at no cost. The HTTP request metrics keep route templates (`/v1/tenants/:tenantId/…`):
// a tenant label there would multiply routes × methods × status codes by the number of tenants.
// Per-tenant figures without that cost: GET /v1/tenants/:tenantId/stats.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AttemptReport, DeliveryStatusReport } from '../activities';
import type { Pool } from './db/pool';
import { backlogSnapshot, type BacklogSnapshot } from './db/stats';
import { allCircuitStates } from './db/gate';
import type { RelayOutcome } from './relay/relay';

// Latency buckets up to the default 15 s request timeout (HOOKLINE_REQUEST_TIMEOUT_MS).
const LATENCY_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];
// Attempts until a delivery ends; the default schedule makes about a dozen in three days.
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50];
// Several Prometheus servers (or a dashboard refreshing) scraping at once share one query.
const SNAPSHOT_TTL_MS = 1_000;

// ---------------------------------------------------------------------------------------------
// API process

export function createApiMetrics(pool: Pool): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  let cached: { at: number; value: Promise<BacklogSnapshot | null> } | null = null;
  const snapshot = () => {
    if (!cached || Date.now() - cached.at > SNAPSHOT_TTL_MS) {
      // A database outage must not fail the scrape: the gauges go absent and database_up says why.
      cached = { at: Date.now(), value: backlogSnapshot(pool).catch(() => null) };
    }
    return cached.value;
  };

  new Gauge({
    name: 'hookline_database_up',
    help: 'Whether the last scrape could read Postgres (1) or not (0)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()) ? 1 : 0);
    },
  });
  // The outbox gauges: one number each from the snapshot, absent when it could not be read.
  const outboxGauge = (name: string, help: string, pick: (o: BacklogSnapshot['outbox']) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.reset();
        const s = await snapshot();
        if (s) this.set(pick(s.outbox));
      },
    });
  outboxGauge('hookline_outbox_backlog', 'Events committed but not yet handed to Temporal by a relay', (o) => o.backlog);
  outboxGauge(
    'hookline_outbox_oldest_age_seconds',
    'Age of the oldest event still in the outbox (0 when empty); growing means no relay is keeping up',
    (o) => o.oldestAgeSeconds,
  );
  outboxGauge('hookline_outbox_retrying', 'Outbox events whose workflow start failed at least once (Temporal unreachable?)', (o) => o.retrying);
  new Gauge({
    name: 'hookline_deliveries_in_progress',
    help: 'Deliveries pending or being attempted, per endpoint (and its tenant)',
    labelNames: ['tenant_id', 'endpoint_id'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const o of (await snapshot())?.open ?? []) if (o.inProgress > 0) this.set({ tenant_id: o.tenantId, endpoint_id: o.endpointId }, o.inProgress);
    },
  });
  new Gauge({
    name: 'hookline_dead_letters_open',
    help: 'Dead letters waiting for a replay (or their retention to end), per endpoint (and its tenant)',
    labelNames: ['tenant_id', 'endpoint_id'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const o of (await snapshot())?.open ?? []) if (o.deadLettered > 0) this.set({ tenant_id: o.tenantId, endpoint_id: o.endpointId }, o.deadLettered);
    },
  });
  let circuits: { at: number; value: Promise<Awaited<ReturnType<typeof allCircuitStates>> | null> } | null = null;
  new Gauge({
    name: 'hookline_endpoint_circuit_state',
    help: 'Circuit breaker per endpoint that has been tried: 0 closed (delivering), 1 half-open (a probe in flight), 2 open (deliveries wait)',
    labelNames: ['endpoint_id'] as const,
    registers: [registry],
    async collect() {
      if (!circuits || Date.now() - circuits.at > SNAPSHOT_TTL_MS) circuits = { at: Date.now(), value: allCircuitStates(pool).catch(() => null) };
      this.reset();
      for (const c of (await circuits.value) ?? []) this.set({ endpoint_id: c.endpointId }, CIRCUIT_VALUES[c.state]);
    },
  });
  return registry;
}

const CIRCUIT_VALUES = { closed: 0, half_open: 1, open: 2 } as const;

/** GET /metrics on the API, and a counter and latency histogram of its own requests. */
export function registerApiMetrics(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'hookline_http_requests_total',
    help: 'API requests by route template, method and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hookline_http_request_duration_seconds',
    help: 'API request duration by route template',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  // A callback hook: it runs on every request and never waits, so no promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    // The route template, never the raw URL: ids in paths would make a series per id.
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status_code: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', { schema: { hide: true }, config: { auth: 'metrics' } }, async (_req, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
}

// ---------------------------------------------------------------------------------------------
// Worker process

export interface WorkerHealth {
  getState(): string;
  getStatus(): { numInFlightActivities: number; activityPollerState: string; workflowPollerState: string };
}

export interface WorkerMetrics {
  registry: Registry;
  onAttempt(a: AttemptReport): void;
  onDeliveryStatus(s: DeliveryStatusReport): void;
  /** What the relay in this process did with an outbox event (src/relay/relay.ts). */
  onRelayOutcome(outcome: RelayOutcome): void;
  /** The running worker, for its health gauges. */
  watch(worker: WorkerHealth): void;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let worker: WorkerHealth | null = null;

  const attempts = new Counter({
    name: 'hookline_delivery_attempts_total',
    help: 'Delivery attempts by endpoint and outcome (delivered, retrying, failed = permanent)',
    labelNames: ['endpoint_id', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'hookline_delivery_attempt_duration_seconds',
    help: 'Time from sending a delivery request to its response or error, by endpoint',
    labelNames: ['endpoint_id'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const perDelivery = new Histogram({
    name: 'hookline_attempts_per_delivery',
    help: 'Attempts a delivery took (counting earlier replays), observed when an attempt ends it: 2xx or a permanent failure',
    labelNames: ['outcome'] as const,
    buckets: ATTEMPT_BUCKETS,
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'hookline_deliveries_total',
    help: 'Deliveries that ended, by endpoint and outcome (delivered, dead_lettered, dropped)',
    labelNames: ['endpoint_id', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'hookline_worker_running',
    help: 'Whether this worker is running and polling (1) or not (0)',
    registers: [registry],
    collect() {
      const ok = worker?.getState() === 'RUNNING' && worker.getStatus().activityPollerState === 'POLLING';
      this.set(ok ? 1 : 0);
    },
  });
  // The outbox's age and backlog are the API's gauges (from Postgres); this says why it grows.
  const relayed = new Counter({
    name: 'hookline_relay_events_total',
    help: 'Outbox events this process relayed, by outcome: started, adopted (a run was there and took the rest), retrying (start failed, will retry: Temporal unreachable?), refused (start can never succeed: dead-lettered)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'hookline_worker_activities_in_flight',
    help: 'Activities (mostly delivery attempts) this worker is executing now',
    registers: [registry],
    collect() {
      this.set(worker ? worker.getStatus().numInFlightActivities : 0);
    },
  });

  return {
    registry,
    onAttempt(a) {
      attempts.inc({ endpoint_id: a.endpointId, outcome: a.outcome });
      latency.observe({ endpoint_id: a.endpointId }, a.latencyMs / 1000);
      if (a.outcome !== 'retrying') perDelivery.observe({ outcome: a.outcome }, a.attempt);
      if (a.outcome === 'delivered') outcomes.inc({ endpoint_id: a.endpointId, outcome: 'delivered' });
    },
    onDeliveryStatus(s) {
      // "delivered" is recorded with its attempt (above); the workflow reports the other two.
      if (s.status === 'dead_lettered' || s.status === 'dropped') {
        outcomes.inc({ endpoint_id: s.endpointId, outcome: s.status });
      }
    },
    onRelayOutcome(outcome) {
      relayed.inc({ outcome });
    },
    watch(w) {
      worker = w;
    },
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A bare HTTP server for a process without Fastify: GET /metrics, and GET /healthz answering
 * 200 or 503 from `healthy()` (a liveness probe for the worker).
 */
export async function serveMetrics(registry: Registry, port: number, host: string, healthy: () => boolean): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not_running' }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
