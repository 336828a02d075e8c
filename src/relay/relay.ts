// The relay: moves committed events from the outbox into Temporal. Wakes on NOTIFY from the
// outbox trigger, polls as a fallback, claims rows with FOR UPDATE SKIP LOCKED so any number of
// relays share the work, plans each event's deliveries (the subscribed endpoints, their retry
// snapshots, their delivery rows, each row holding its plan) and starts deliverEvent,
// workflowId = event id: with the endpoints (up to ENDPOINT_IDS_MAX, so the first task can POST
// at once) or, past that, with only their count (children load their slices from the rows).
// A start that finds the workflow already there is never taken for its own: a run a relay
// started is left alone, any other is handed what it does not know (adopt). A start Temporal
// refuses as invalid is dead-lettered, not retried (StartRefused). It runs inside `hookline
// worker` (src/worker/worker.ts), starting eagerly on that worker, or on its own as `hookline
// relay` (src/relay/run.ts). The outbox rows are src/db/outbox.ts's to write.
import pg from 'pg';
import { isGrpcServiceError, ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { deadLetterPending, ensureDeliveriesOfEvents, hasPendingDeliveries } from '../db/deliveries';
import { listActiveEndpoints } from '../db/endpoints';
import { backOffOutbox, claimOutbox, deleteOutbox, type ClaimedEvent } from '../db/outbox';
import type { Pool, PoolClient } from '../db/pool';
import type { Logger } from '../logger';
import { recordStartRefused } from '../ops-events';
import { subscribersOf, toResolved, type ResolvedEndpoint } from '../subscriptions';
import { ENDPOINT_IDS_MAX, workflowStartMetadata } from '../temporal/workflow-details';
import { traceRelayStart } from '../telemetry';
import type { deliverEvent } from '../../workflows';

export type { ClaimedEvent } from '../db/outbox';

export interface RelayOptions {
  pool: Pool;
  client: Client;
  taskQueue: string;
  /** For the LISTEN connection, which must not come from the pool. */
  databaseUrl: string;
  batchSize: number;
  pollMs: number;
  log: Logger;
  /** The workers' request timeout (HOOKLINE_REQUEST_TIMEOUT_MS); bounds an attempt's task timeout. */
  requestTimeoutMs?: number;
  /**
   * Request Eager Workflow Start: `client` shares its NativeConnection with a Worker of this
   * process on `taskQueue` (the relay inside `hookline worker`). The start response then carries
   * the first workflow task, handed to that worker without a trip through Temporal's matching.
   * The SDK asks only while the worker has a free workflow-task slot; otherwise, or when the
   * server declines, it is a normal start and the task goes through matching as before.
   */
  eagerStart?: boolean;
  /** HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT: an event with more is dead-lettered, not started. */
  maxSubscribersPerEvent?: number;
  /** Counts what the relay did (src/metrics.ts), for the worker's /metrics. */
  onOutcome?: (outcome: RelayOutcome) => void;
}

/** started / adopted (handed to a run that was there) / retrying (will try again) / refused (dead-lettered). */
export type RelayOutcome = 'started' | 'adopted' | 'retrying' | 'refused';

/** Must match HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT's default (src/config.ts). */
export const DEFAULT_MAX_SUBSCRIBERS_PER_EVENT = 10_000;

/**
 * A start that can never succeed as it is (Temporal refused it as invalid, or the event has more
 * subscribers than allowed): retrying would loop forever, so the event is dead-lettered instead.
 */
export class StartRefused extends Error {
  override name = 'StartRefused';
}

// A failed start (Temporal down) is retried after this, doubling per failure up to the cap.
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 30_000;

export class Relay {
  private listener: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private draining: Promise<void> | null = null;
  private again = false;
  /** Events started by this relay (for tests and metrics). */
  started = 0;
  /** Of those, the ones whose first workflow task came back in the start response. */
  eagerlyStarted = 0;
  /** Events whose start found a run there, handed what it did not know (see adopt). */
  adopted = 0;
  /** Events dead-lettered because their start can never succeed (see StartRefused). */
  refused = 0;

  constructor(private readonly o: RelayOptions) {}

  async start(): Promise<void> {
    this.running = true;
    await this.listen();
    this.timer = setInterval(() => this.wake(), this.o.pollMs);
    this.wake();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.draining;
    await this.listener?.end().catch(() => {});
    this.listener = null;
  }

  /** Starts a drain unless one is running; a wake during a drain makes it go round again. */
  wake(): void {
    if (!this.running) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = (async () => {
      try {
        do {
          this.again = false;
          while (this.running && (await this.relayBatch()) === this.o.batchSize) {
            /* a full batch: there may be more */
          }
        } while (this.again && this.running);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'relay batch failed; will retry on next poll');
      } finally {
        this.draining = null;
      }
    })();
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.o.databaseUrl, application_name: 'hookline-relay-listen' });
    client.on('notification', () => this.wake());
    client.on('error', (err) => {
      // Lost the LISTEN connection (database restart): polling covers the gap; reconnect.
      this.o.log.warn({ err: err.message }, 'relay LISTEN connection lost; reconnecting');
      this.listener = null;
      setTimeout(() => this.running && this.listen().catch(() => {}), 1_000);
    });
    try {
      await client.connect();
      await client.query('LISTEN hookline_outbox');
      this.listener = client;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'relay could not LISTEN; polling only until it can');
      await client.end().catch(() => {});
      setTimeout(() => this.running && this.listen().catch(() => {}), 1_000);
    }
  }

  /** Claims and relays one batch; returns how many rows it claimed. */
  async relayBatch(): Promise<number> {
    const db = await this.o.pool.connect();
    try {
      await db.query('BEGIN');
      const rows = await claimOutbox(db, this.o.batchSize);
      const results = await this.startWorkflows(rows);
      const done: string[] = [];
      let failed = 0;
      for (let i = 0; i < rows.length; i++) {
        const result = results[i];
        if (result.status === 'rejected' && result.reason instanceof StartRefused) await this.refuse(db, rows[i], result.reason.message);
        else if (result.status === 'rejected') {
          failed += 1;
          this.o.onOutcome?.('retrying');
          const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** rows[i].relay_attempts);
          await backOffOutbox(db, rows[i].event_id, String((result.reason as Error)?.message ?? result.reason), delay);
          continue;
        }
        done.push(rows[i].event_id);
      }
      await deleteOutbox(db, done);
      await db.query('COMMIT');
      if (failed > 0) this.o.log.warn({ failed }, 'relay could not start some workflows; will retry');
      return rows.length;
    } catch (err) {
      await db.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      db.release();
    }
  }

  /**
   * An event no start can deliver: its pending deliveries become dead letters with the reason
   * (replayable once the cause is fixed) and an operational event tells the operator. The
   * outbox row goes with the batch's (same transaction: all of it or none).
   */
  private async refuse(db: PoolClient, row: ClaimedEvent, reason: string): Promise<void> {
    const deliveries = await deadLetterPending(db, row.event_id, reason);
    await recordStartRefused(db, { tenantId: row.tenant_id, eventId: row.event_id, eventType: row.type, reason, deliveries });
    this.refused += 1;
    this.o.onOutcome?.('refused');
    this.o.log.error({ eventId: row.event_id, eventType: row.type, deliveries, reason }, 'event dead-lettered: its workflow start can never succeed');
  }

  /**
   * Plans each event's deliveries and starts its workflow with them. The delivery rows (each
   * with its plan) are written outside the outbox transaction (idempotent), so they exist even
   * if this relay dies after starting and before committing.
   */
  private async startWorkflows(rows: ClaimedEvent[]): Promise<PromiseSettledResult<void>[]> {
    if (rows.length === 0) return [];
    const active = await listActiveEndpoints(this.o.pool, [...new Set(rows.map((r) => r.tenant_id))]);
    const plans = rows.map((r) => subscribersOf(active, { tenantId: r.tenant_id, onlyEndpointId: r.only_endpoint_id, type: r.type, channels: r.channels }).map(toResolved));
    const rowsOf = (r: ClaimedEvent, i: number) => ({ eventId: r.event_id, eventType: r.type, tenantId: r.tenant_id, endpoints: plans[i] });
    // The whole batch's delivery rows in one round trip (was one per event). If that fails, each
    // event tries on its own, so one bad event backs off alone instead of stalling its batch.
    const batched = await ensureDeliveriesOfEvents(this.o.pool, rows.map(rowsOf)).then(() => true, () => false);
    return Promise.allSettled(rows.map(async (r, i) => {
      if (!batched) await ensureDeliveriesOfEvents(this.o.pool, [rowsOf(r, i)]);
      const max = this.o.maxSubscribersPerEvent ?? DEFAULT_MAX_SUBSCRIBERS_PER_EVENT;
      if (plans[i].length > max) {
        throw new StartRefused(`the event has ${plans[i].length} subscribed endpoints, more than HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT (${max})`);
      }
      // In a span of the event's trace when tracing is on (src/telemetry); a plain call when off.
      await traceRelayStart({ eventId: r.event_id, eventType: r.type, carrier: r.trace_context },
        () => this.startWorkflow(r.event_id, r.type, plans[i], r.tenant_id));
    }));
  }

  /**
   * Starts the event's workflow. Up to ENDPOINT_IDS_MAX endpoints travel in the input, as the
   * first task needs them (one task, no lookup); past that only their count does, and the
   * children load their slices from the delivery rows, so the start request has the same size
   * whatever the fan-out (2,400 plans of ~1 KB once made a 2.48 MB start Temporal refused).
   */
  private async startWorkflow(eventId: string, eventType: string, endpoints: ResolvedEndpoint[], tenantId: string): Promise<void> {
    const large = endpoints.length > ENDPOINT_IDS_MAX;
    const plan = large ? { fanOut: { total: endpoints.length } } : { endpoints };
    try {
      const handle = await this.o.client.workflow.start<typeof deliverEvent>('deliverEvent', {
        workflowId: eventId,
        taskQueue: this.o.taskQueue,
        args: [{ eventId, eventType, ...plan, requestTimeoutMs: this.o.requestTimeoutMs }],
        // Never a second run for the same event, even after the first one closed.
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        requestEagerStart: this.o.eagerStart,
        // Marks a run that holds the event's whole plan (see adopt).
        memo: { planned: true },
        // EndpointIds lists at most ENDPOINT_IDS_MAX (listedAtStart): bounded too.
        ...workflowStartMetadata(eventType, eventId, endpoints.map((e) => e.id), undefined, tenantId),
      });
      this.started += 1;
      this.o.onOutcome?.('started');
      if (handle.eagerlyStarted) this.eagerlyStarted += 1;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return this.adopt(eventId, eventType, tenantId);
      if (refusedAsInvalid(err)) throw new StartRefused(`Temporal refused the workflow start: ${detailsOf(err)}`);
      throw err;
    }
  }

  /**
   * The workflow was there already. It may be this event's own run (a relay died after
   * starting it), or a run that knows only some endpoints (a replay's signalWithStart got in
   * first): never assume which. A running one gets the `adopt` signal and takes over every
   * pending delivery it does not know (its own run ignores it); a closed one that left
   * deliveries pending gets a new run that delivers them.
   */
  private async adopt(eventId: string, eventType: string, tenantId: string): Promise<void> {
    const handle = this.o.client.workflow.getHandle(eventId);
    try {
      const run = await handle.describe();
      // A run a relay started holds the whole plan: leave it be. A signal landing in its first
      // task would fail that task, and its local first attempts would POST a second time.
      if (run.status.name === 'RUNNING' && run.memo?.planned) return;
      if (run.status.name === 'RUNNING') return void (await handle.signal('adopt'), this.adoptedOne());
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    // Closed: every delivery it knew is settled, so a pending one is nobody's.
    if (!(await hasPendingDeliveries(this.o.pool, eventId))) return;
    await this.o.client.workflow.signalWithStart<typeof deliverEvent, []>('deliverEvent', {
      workflowId: eventId,
      taskQueue: this.o.taskQueue,
      args: [{ eventId, eventType, adopt: true, requestTimeoutMs: this.o.requestTimeoutMs }],
      signal: 'adopt',
      signalArgs: [],
      // A new run of a closed event, as a replay makes one; signalWithStart signals a running one instead.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { planned: true },
      ...workflowStartMetadata(eventType, eventId, [], undefined, tenantId),
    });
    this.adoptedOne();
  }

  private adoptedOne(): void {
    this.adopted += 1;
    this.o.onOutcome?.('adopted');
  }
}

/**
 * Temporal's answer that this request can never succeed (INVALID_ARGUMENT: a size limit, a bad
 * field; or a request past the gRPC message limit) — not an outage, which retrying fixes.
 */
function refusedAsInvalid(err: unknown): boolean {
  const cause = err instanceof ServiceError ? err.cause : err;
  if (!isGrpcServiceError(cause)) return false;
  return cause.code === GRPC_INVALID_ARGUMENT || (cause.code === GRPC_RESOURCE_EXHAUSTED && /larger than max/i.test(cause.details ?? ''));
}

const GRPC_INVALID_ARGUMENT = 3;
const GRPC_RESOURCE_EXHAUSTED = 8;

function detailsOf(err: unknown): string {
  const cause = err instanceof ServiceError ? err.cause : err;
  return (isGrpcServiceError(cause) ? cause.details : undefined) || (err as Error).message;
}
