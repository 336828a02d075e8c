// The endpoint gate: whether an attempt may go to its endpoint now, and what its outcome does
// to the endpoint's health. The state is one endpoint_gates row per endpoint (and its queue in
// gate_waiters), written only by the gate_* SQL functions (src/db/functions.sql), each one
// statement under the row's lock, so every worker in every process shares one in-flight cap, one
// rate limit, one Retry-After pause and one circuit breaker. This module owns both tables and
// those functions: everything else reaches the gate through it.
//
// Neither adds a round trip to an attempt: acquire is part of the query that loads the endpoint and the event,
// release part of the statement that records the attempt (src/db/deliveries.ts).
import type { Pool, PoolClient } from './pool';
import { COLUMNS, toRow, type EndpointRow } from './endpoints';
import { eventAndSecretsColumns, toEventAndSecrets, type EventRow } from './events';
import { listenerOffline } from './listen-sessions';

type Queryable = Pool | PoolClient;

export type WaitReason = 'in_flight' | 'rate_limit' | 'paused' | 'circuit_open' | 'disabled'
  /** A `hookline listen` endpoint whose listener is away (decided by its transport, not gate_acquire). */
  | 'listener_offline';

export interface GateDecision {
  admitted: boolean;
  reason: WaitReason | null;
  /** Refused: how long until trying again makes sense (database clock). */
  waitMs: number;
  /** Rate limit: the slot reserved for this caller; passing it back honours it. */
  slotMs: number | null;
  /** In-flight cap or open circuit: this caller's place in the queue; passing it back keeps it. */
  ticket: number | null;
  /**
   * Rate limit: a start this caller owns, waitMs away (at most a second or two). Its worker
   * waits for it in-process and then takes the lease with acquireAgain.
   */
  startMs: number | null;
}

/** How an attempt ended, as the circuit breaker counts it. */
export type GateOutcome = 'success' | 'failure' | 'neutral';

/** Circuit breaker and auto-disable settings (worker config). */
export interface GateSettings {
  defaultMaxInFlight: number;
  /** Consecutive failures that open the circuit; 0 = never. */
  failureThreshold: number;
  probeIntervalMs: number;
  probeMaxIntervalMs: number;
  /** Failing this long with no 2xx disables the endpoint; 0 = never. */
  autoDisableAfterMs: number;
}

// Bounds on an endpoint's own settings (the API checks them). maxInFlight stays below the
// worker's activity slots (HOOKLINE_WORKER_MAX_ACTIVITIES, 200; local activities: 100), so one
// endpoint can never hold every slot; timeouts stay short enough that a hanging receiver frees
// its slot within a minute.
export const MAX_IN_FLIGHT_LIMIT = 50;
export const MAX_RATE_LIMIT = 1_000;
export const MIN_TIMEOUT_MS = 100;
export const MAX_CONNECT_TIMEOUT_MS = 30_000;
export const MAX_RESPONSE_TIMEOUT_MS = 60_000;

export const DEFAULT_GATE: GateSettings = {
  // 10, measured: since a refused attempt takes a slot freed in the same worker in process
  // (activities/slot-waiters.ts), a burst of 500 events to one endpoint costs the same at 10 as
  // at 50 (bench e2e, two runs each: worker 9.4-10.1 vs 9.7-9.9 s CPU, Temporal 10.9-12.9 vs
  // 12.7-12.8 s); before, 10 cost twice the CPU and ran at a third of the rate. The lower cap
  // is what protects a slow receiver and bounds what one hanging endpoint holds of the worker.
  defaultMaxInFlight: 10,
  failureThreshold: 5,
  probeIntervalMs: 5_000,
  probeMaxIntervalMs: 5 * 60_000,
  autoDisableAfterMs: 5 * 24 * 60 * 60_000,
};

/**
 * What one attempt reads, with its gate's lease, in one query: the endpoint and the gate's answer
 * (null: no such endpoint), the event and the endpoint's signing secrets (null: no such event;
 * src/db/events.ts). A disabled endpoint is refused with reason 'disabled' and takes no lease.
 * Always one row: the endpoint's side is a lateral join, so a missing event or endpoint is told
 * apart, and the gate is asked once, for this endpoint only.
 */
export async function loadAttemptAcquiring(
  db: Queryable,
  eventId: string,
  endpointId: string,
  lease: { id: string; defaultTimeoutMs: number; marginMs: number; slotMs: number | null; ticket: number | null; workflowId: string | null },
  settings: GateSettings,
): Promise<{ loaded: { endpoint: EndpointRow; gate: GateDecision } | null; read: { event: EventRow; secrets: string[] } | null }> {
  const { rows } = await db.query(
    `SELECT a.*, ${eventAndSecretsColumns('$1')}
     FROM (SELECT $11::text AS id) x
     LEFT JOIN events ev ON ev.id = x.id
     LEFT JOIN LATERAL (
       SELECT ${COLUMNS}, g.admitted, g.reason, g.wait_ms, g.slot_ms, g.ticket, g.start_ms
       FROM endpoints e CROSS JOIN LATERAL gate_acquire(e.id, $2, $3, $4, $5, $6, $7, $8, $9, $10) g WHERE e.id = $1
     ) a ON true`,
    [endpointId, lease.id, lease.defaultTimeoutMs, lease.marginMs, lease.slotMs, lease.ticket, settings.defaultMaxInFlight, settings.probeIntervalMs, settings.probeMaxIntervalMs, lease.workflowId, eventId],
  );
  const r = rows[0];
  return { loaded: r.id === null ? null : { endpoint: toRow(r), gate: toDecision(r) }, read: toEventAndSecrets(r, endpointId) };
}

/**
 * A second ask for the lease, in the caller's place: a rate-limited delivery whose scheduled
 * start has come (GateDecision.startMs), or a queued one a release handed its slot in process
 * (startMs null; activities/slot-waiters.ts). The in-flight cap, a pause or the circuit may
 * still refuse it. A second round trip, only on those two paths.
 */
export async function acquireAgain(
  db: Queryable,
  endpointId: string,
  lease: { id: string; defaultTimeoutMs: number; marginMs: number; slotMs: number | null; ticket: number | null; workflowId: string | null; startMs: number | null },
  settings: GateSettings,
): Promise<GateDecision> {
  const { rows } = await db.query(
    'SELECT * FROM gate_acquire($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
    [endpointId, lease.id, lease.defaultTimeoutMs, lease.marginMs, lease.slotMs, lease.ticket, settings.defaultMaxInFlight, settings.probeIntervalMs, settings.probeMaxIntervalMs, lease.workflowId, lease.startMs],
  );
  return toDecision(rows[0]);
}

const toDecision = (r: any): GateDecision => ({
  admitted: r.admitted,
  reason: r.reason,
  waitMs: Math.max(0, Number(r.wait_ms ?? 0)),
  slotMs: r.slot_ms === null ? null : Number(r.slot_ms),
  ticket: r.ticket === null ? null : Number(r.ticket),
  startMs: r.start_ms === null ? null : Number(r.start_ms),
});

/** gate_release's arguments, in its order (src/db/functions.sql). */
export type GateRelease = readonly [
  endpointId: string, leaseId: string, outcome: GateOutcome, retryAfterMs: number,
  threshold: number, probeMs: number, probeMaxMs: number, disableAfterMs: number,
];

/**
 * The release of an attempt's lease, for recordAttemptReleasing to call gate_release with in the
 * attempt's statement: it returns the transition and the workflow of the in-flight waiter it
 * woke (the caller signals it).
 */
export function gateRelease(endpointId: string, leaseId: string, outcome: GateOutcome, retryAfterMs: number, s: GateSettings): GateRelease {
  return [endpointId, leaseId, outcome, Math.round(retryAfterMs), s.failureThreshold, s.probeIntervalMs, s.probeMaxIntervalMs, s.autoDisableAfterMs];
}

/** A release on its own: an attempt that ended before it could be recorded. Neutral to health. */
export async function releaseLease(db: Queryable, endpointId: string, leaseId: string): Promise<void> {
  await db.query('SELECT gate_drop_lease($1, $2)', [endpointId, leaseId]);
}

/**
 * The delivery this workflow ran to the endpoint gave up (dead-lettered): it leaves the endpoint's
 * in-flight queue, so the next release hands its slot to a delivery that still waits.
 */
export async function forgetWaiter(db: Queryable, endpointId: string, workflowId: string): Promise<void> {
  await db.query('SELECT gate_forget($1, $2)', [endpointId, workflowId]);
}

/** Re-enabled by an operator: the failure streak and the circuit start from nothing. */
export async function resetGate(db: Queryable, endpointId: string): Promise<void> {
  await db.query('SELECT gate_reset($1)', [endpointId]);
}

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface EndpointHealth {
  state: CircuitState;
  since: Date | null;
  consecutiveFailures: number;
  nextProbeAt: Date | null;
  failingSince: Date | null;
  lastSuccessAt: Date | null;
  inFlight: number;
  pausedUntil: Date | null;
  /** Why deliveries wait now, whatever the circuit: a Retry-After, or a `hookline listen` endpoint with nobody listening. */
  pausedReason: 'retry_after' | 'listener_offline' | null;
}

const HEALTH = `circuit, circuit_since, consecutive_failures, next_probe_at, failing_since, last_success_at, pause_until,
  (SELECT count(*)::int FROM jsonb_each(leases) WHERE value::bigint > extract(epoch FROM clock_timestamp()) * 1000) AS in_flight`;

const toHealth = (r: any): EndpointHealth => ({
  state: r.circuit,
  since: r.circuit_since,
  consecutiveFailures: r.consecutive_failures,
  nextProbeAt: r.circuit === 'closed' ? null : r.next_probe_at,
  failingSince: r.failing_since,
  lastSuccessAt: r.last_success_at,
  inFlight: r.in_flight,
  pausedUntil: r.pause_until && r.pause_until > new Date() ? r.pause_until : null,
  pausedReason: r.pause_until && r.pause_until > new Date() ? 'retry_after' : null,
});

const NEVER_TRIED: EndpointHealth = {
  state: 'closed', since: null, consecutiveFailures: 0, nextProbeAt: null, failingSince: null, lastSuccessAt: null, inFlight: 0, pausedUntil: null, pausedReason: null,
};

export async function endpointHealth(db: Queryable, endpointId: string): Promise<EndpointHealth> {
  const { rows } = await db.query(`SELECT ${HEALTH} FROM endpoint_gates WHERE endpoint_id = $1`, [endpointId]);
  const health = rows[0] ? toHealth(rows[0]) : NEVER_TRIED;
  return (await listenerOffline(db, endpointId)) ? { ...health, pausedReason: 'listener_offline' } : health;
}

/** Every endpoint whose gate has state (Prometheus' circuit gauge). */
export async function allCircuitStates(db: Queryable): Promise<{ endpointId: string; state: CircuitState }[]> {
  const { rows } = await db.query(`SELECT endpoint_id, circuit FROM endpoint_gates ORDER BY endpoint_id`);
  return rows.map((r) => ({ endpointId: r.endpoint_id, state: r.circuit }));
}
