// The relay: moves committed events from the outbox into Temporal. Wakes on NOTIFY from the
// outbox trigger, polls as a fallback, claims rows with FOR UPDATE SKIP LOCKED so any number of
// relays share the work, plans each event's deliveries (the subscribed endpoints, their retry
// snapshots, their delivery rows) and starts deliverEvent with them, workflowId = event id, so
// the workflow's first task can POST at once. A start that finds the workflow already there
// (a relay died after starting, before deleting the row) counts as success, so an event is
// never started twice and never skipped. It runs inside `hookline worker` (src/worker/worker.ts),
// starting eagerly on that worker, or on its own as `hookline relay` (src/relay/run.ts).
import pg from 'pg';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { ensureDeliveriesOfEvents } from '../db/deliveries';
import { listActiveEndpoints } from '../db/endpoints';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import { subscribersOf, toResolved, type ResolvedEndpoint } from '../subscriptions';
import { workflowStartMetadata } from '../temporal/workflow-details';
import { traceRelayStart } from '../telemetry';
import type { deliverEvent } from '../../workflows';

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
}

/** An outbox row, claimed, with what the relay needs to plan the event's deliveries. */
export interface ClaimedEvent {
  event_id: string;
  tenant_id: string;
  only_endpoint_id: string | null;
  type: string;
  channels: string[] | null;
  relay_attempts: number;
  /** The recording request's W3C trace context (tracing on), else null. */
  trace_context: Record<string, string> | null;
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
      const { rows } = await db.query<ClaimedEvent>(
        `SELECT o.event_id, e.tenant_id, e.only_endpoint_id, e.type, e.channels, o.relay_attempts, o.trace_context FROM outbox o JOIN events e ON e.id = o.event_id
         WHERE o.available_at <= now()
         ORDER BY o.created_at, o.event_id
         LIMIT $1 FOR UPDATE OF o SKIP LOCKED`,
        [this.o.batchSize],
      );
      const results = await this.startWorkflows(rows);
      const done: string[] = [];
      for (let i = 0; i < rows.length; i++) {
        const result = results[i];
        if (result.status === 'fulfilled') {
          done.push(rows[i].event_id);
          continue;
        }
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** rows[i].relay_attempts);
        await db.query(
          `UPDATE outbox SET relay_attempts = relay_attempts + 1, last_error = $2,
             available_at = now() + make_interval(secs => $3::double precision / 1000) WHERE event_id = $1`,
          [rows[i].event_id, String((result.reason as Error)?.message ?? result.reason).slice(0, 1000), delay],
        );
      }
      if (done.length > 0) await db.query('DELETE FROM outbox WHERE event_id = ANY($1)', [done]);
      await db.query('COMMIT');
      const failed = rows.length - done.length;
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
   * Plans each event's deliveries and starts its workflow with them. The delivery rows are
   * written outside the outbox transaction (idempotent), so they exist even if this relay dies
   * after starting and before committing.
   */
  private async startWorkflows(rows: ClaimedEvent[]): Promise<PromiseSettledResult<void>[]> {
    if (rows.length === 0) return [];
    const active = await listActiveEndpoints(this.o.pool, [...new Set(rows.map((r) => r.tenant_id))]);
    const plans = rows.map((r) => subscribersOf(active, { tenantId: r.tenant_id, onlyEndpointId: r.only_endpoint_id, type: r.type, channels: r.channels }).map(toResolved));
    const rowsOf = (r: ClaimedEvent, i: number) => ({ eventId: r.event_id, eventType: r.type, tenantId: r.tenant_id, endpointIds: plans[i].map((e) => e.id) });
    // The whole batch's delivery rows in one round trip (was one per event). If that fails, each
    // event tries on its own, so one bad event backs off alone instead of stalling its batch.
    const batched = await ensureDeliveriesOfEvents(this.o.pool, rows.map(rowsOf)).then(() => true, () => false);
    return Promise.allSettled(rows.map(async (r, i) => {
      if (!batched) await ensureDeliveriesOfEvents(this.o.pool, [rowsOf(r, i)]);
      // In a span of the event's trace when tracing is on (src/telemetry); a plain call when off.
      await traceRelayStart({ eventId: r.event_id, eventType: r.type, carrier: r.trace_context },
        () => this.startWorkflow(r.event_id, r.type, plans[i], r.tenant_id));
    }));
  }

  private async startWorkflow(eventId: string, eventType: string, endpoints: ResolvedEndpoint[], tenantId: string): Promise<void> {
    const ids = endpoints.map((e) => e.id);
    try {
      const handle = await this.o.client.workflow.start<typeof deliverEvent>('deliverEvent', {
        workflowId: eventId,
        taskQueue: this.o.taskQueue,
        args: [{ eventId, eventType, endpoints, requestTimeoutMs: this.o.requestTimeoutMs }],
        // Never a second run for the same event, even after the first one closed.
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        requestEagerStart: this.o.eagerStart,
        ...workflowStartMetadata(eventType, eventId, ids, undefined, tenantId),
      });
      this.started += 1;
      if (handle.eagerlyStarted) this.eagerlyStarted += 1;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw err;
    }
  }
}
