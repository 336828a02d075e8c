// Hookline's own events ("operational webhooks"): things an operator wants to hear about —
// an endpoint disabled, a circuit opened, a delivery dead-lettered. They are ordinary events on
// the reserved `hookline.` type prefix, written with their outbox row, so they are delivered,
// signed, retried and shown in the Web UI like any other; an operator subscribes a URL to
// `hookline.*` (a catch-all endpoint does not get them: see src/matching.ts). This module is the
// one place that emits them, and owns their catalogue entries and the two guards:
//
// - Loop guard: a dead letter or drop of a hookline.* delivery emits nothing, so an operator
//   endpoint that fails cannot feed itself (emitDeliveryEvent).
// - Storm cap: per endpoint and per type, at most `perWindow` events per window (default 10 a
//   minute), counted in Postgres (migration 012) so all workers share it. Past the cap events are
//   counted, not sent; the last one a window allows says so (`moreSuppressedUntil`) and the next
//   one sent carries the count (`suppressedSinceLast`). 10,000 dead letters of one endpoint in a
//   minute are 10 events, not 10,000; the dead letters themselves stay in GET /v1/dead-letters.
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import { newEventId } from './ids';
import { getEvent, insertEventWithOutbox } from './db/events';
import { getDelivery } from './db/deliveries';
import { notifyOutbox, notifyOutboxOnCommit } from './db/outbox-notify';
import { updateEndpoint, type EndpointRow } from './db/endpoints';
import { withTransaction, type Pool, type PoolClient } from './db/pool';

/** The reserved prefix: producers may not publish under it. */
export const OPERATIONAL_PREFIX = 'hookline.';

export const OperationalEventTypes = [
  'hookline.endpoint.disabled',
  'hookline.endpoint.circuit_opened',
  'hookline.endpoint.recovered',
  'hookline.delivery.dead_lettered',
  'hookline.delivery.dropped',
] as const;
export type OperationalEventType = (typeof OperationalEventTypes)[number];

export function isOperationalType(type: string): boolean {
  return type.startsWith(OPERATIONAL_PREFIX);
}

export interface OpsEventLimit {
  /** Events of one type about one endpoint that one window sends. */
  perWindow: number;
  windowMs: number;
}

// Enough to see a pattern (an endpoint dead-lettering every few seconds), few enough that a storm
// on one endpoint cannot bury the operator's receiver or the outbox.
export const DEFAULT_OPS_EVENT_LIMIT: OpsEventLimit = { perWindow: 10, windowMs: 60_000 };

export interface EmitOptions {
  /**
   * A deterministic id (see operationalEventId): emitting again with the same id writes nothing
   * and counts nothing, so a retried activity reports one transition once.
   */
  id?: string;
  /** The storm cap (default DEFAULT_OPS_EVENT_LIMIT), applied per `data.endpointId`. */
  limit?: OpsEventLimit;
}

export type EmitResult = { id: string; outcome: 'created' | 'exists' | 'suppressed' };

/** Records one operational event (and its outbox row); the relay delivers it as any event. */
export async function emitOperationalEvent(
  db: Pool | PoolClient,
  type: OperationalEventType,
  data: Record<string, unknown>,
  opts: EmitOptions = {},
): Promise<string> {
  return (await recordOperationalEvent(db, type, data, opts)).id;
}

/**
 * emitOperationalEvent, saying what happened: `suppressed` (the storm cap held it back; no event
 * with that id exists) or `exists` (an earlier try of the same transition wrote it).
 */
export async function recordOperationalEvent(
  db: Pool | PoolClient,
  type: OperationalEventType,
  data: Record<string, unknown>,
  opts: EmitOptions = {},
): Promise<EmitResult> {
  const id = opts.id ?? newEventId();
  if (opts.id && (await getEvent(db, id))) return { id, outcome: 'exists' };
  const endpointId = typeof data.endpointId === 'string' ? data.endpointId : null;
  let body = data;
  let reported = 0;
  if (endpointId) {
    const w = await countInWindow(db, endpointId, type, opts.limit ?? DEFAULT_OPS_EVENT_LIMIT);
    if (w.held) return { id, outcome: 'suppressed' };
    reported = w.suppressed;
    body = {
      ...data,
      ...(w.suppressed > 0 ? { suppressedSinceLast: w.suppressed } : {}),
      ...(w.lastOfWindow ? { moreSuppressedUntil: w.windowEndsAt.toISOString() } : {}),
    };
  }
  // Version 1: the catalogue's schema (OPERATIONAL_EVENT_CATALOGUE) that `data` follows.
  const { created } = await insertEventWithOutbox(db, { id, type, data: body, version: 1 });
  if (!created) return { id, outcome: 'exists' };
  // Subtract what this event reported, not reset: holds counted meanwhile are kept for the next.
  if (reported > 0) {
    await db.query('UPDATE ops_event_windows SET suppressed = greatest(suppressed - $3, 0) WHERE endpoint_id = $1 AND type = $2', [endpointId, type, reported]);
  }
  if (isPool(db)) notifyOutbox(db);
  else await notifyOutboxOnCommit(db);
  return { id, outcome: 'created' };
}

const isPool = (db: Pool | PoolClient): db is Pool => 'totalCount' in db;

/**
 * Counts one event against its (endpoint, type) window. A window opens with the first event
 * after the previous one ended (not on clock minutes), so a burst is capped the same wherever it
 * falls. The row lock of the upsert serialises concurrent workers.
 */
async function countInWindow(db: Pool | PoolClient, endpointId: string, type: string, limit: OpsEventLimit) {
  const { rows } = await db.query<{ seen: number; suppressed: number; window_start: Date }>(
    `INSERT INTO ops_event_windows AS w (endpoint_id, type, window_start, seen, suppressed)
     VALUES ($1, $2, now(), 1, 0)
     ON CONFLICT (endpoint_id, type) DO UPDATE SET
       window_start = CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) THEN w.window_start ELSE now() END,
       seen = CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) THEN w.seen + 1 ELSE 1 END,
       suppressed = w.suppressed + CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) AND w.seen >= $4 THEN 1 ELSE 0 END
     RETURNING seen, suppressed, window_start`,
    [endpointId, type, limit.windowMs, limit.perWindow],
  );
  const r = rows[0];
  return {
    held: r.seen > limit.perWindow,
    lastOfWindow: r.seen === limit.perWindow,
    suppressed: r.suppressed,
    windowEndsAt: new Date(r.window_start.getTime() + limit.windowMs),
  };
}

/**
 * An event id that is the same on every try of one transition, shaped like any other (`evt_` +
 * a ULID whose time part is `timeMs`, so it sorts with events of its time) — its random part is
 * a hash of `parts`.
 */
export function operationalEventId(timeMs: number, ...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\0')).digest();
  let i = 0;
  return `evt_${ulid(timeMs, () => digest[i++] / 256)}`;
}

/**
 * hookline.delivery.dead_lettered / .dropped after a delivery's row moved to that status. `id`
 * must name the transition (the markDelivery activity derives it from its workflow run and
 * activity id, stable across its retries). Loop guard: nothing for a hookline.* delivery.
 */
export async function emitDeliveryEvent(
  db: Pool,
  d: { eventId: string; endpointId: string; status: 'dead_lettered' | 'dropped'; reason: string | null },
  opts: EmitOptions,
): Promise<EmitResult | null> {
  const row = await getDelivery(db, d.eventId, d.endpointId);
  if (!row || isOperationalType(row.eventType)) return null;
  const common = {
    eventId: row.eventId,
    eventType: row.eventType,
    endpointId: row.endpointId,
    reason: d.reason,
    attempts: row.attempts,
    lastStatusCode: row.lastStatusCode,
  };
  return d.status === 'dead_lettered'
    ? recordOperationalEvent(db, 'hookline.delivery.dead_lettered', { ...common, deadLetteredAt: (row.deadLetteredAt ?? row.updatedAt).toISOString() }, opts)
    : recordOperationalEvent(db, 'hookline.delivery.dropped', { ...common, droppedAt: row.updatedAt.toISOString() }, opts);
}

/** What the id of a markDelivery activity's event is made of (its Context.current().info). */
export interface ActivityIdentity {
  /** Absent only for an activity run outside a workflow. */
  workflowExecution?: { workflowId: string; runId: string };
  activityId: string;
  /** When the activity was first scheduled: the same on every retry of it. */
  scheduledTimestampMs: number;
}

/** One id per scheduled activity, whichever attempt of it emits. */
export function activityEventId(info: ActivityIdentity): string {
  const { workflowId, runId } = info.workflowExecution ?? { workflowId: '', runId: '' };
  return operationalEventId(info.scheduledTimestampMs, 'activity', workflowId, runId, info.activityId);
}

/**
 * Disables an endpoint for `reason` and emits hookline.endpoint.disabled, in one transaction. The
 * event id is derived from the endpoint row as the caller loaded it (enabled), so two deliveries
 * that both saw the same answer, or a retry of one, report the transition once.
 */
export async function disableEndpoint(
  pool: Pool,
  loaded: Pick<EndpointRow, 'id' | 'updatedAt'>,
  why: { reason: string; eventId?: string; statusCode?: number },
  limit?: OpsEventLimit,
): Promise<void> {
  await withTransaction(pool, async (db) => {
    const row = await updateEndpoint(db, loaded.id, { disabled: true, disabledReason: why.reason });
    if (!row) return; // deleted meanwhile: nothing to report
    const id = operationalEventId(loaded.updatedAt.getTime(), 'endpoint.disabled', loaded.id, loaded.updatedAt.toISOString());
    await recordOperationalEvent(db, 'hookline.endpoint.disabled', { endpointId: loaded.id, disabledAt: row.updatedAt.toISOString(), ...why }, { id, limit });
  });
}

// ---------------------------------------------------------------------------------------------
// The catalogue: what GET /v1/event-types and the console show for each operational type. The
// schemas describe `data`; fields beyond them may be added in later versions.

const dateTime = { type: 'string', format: 'date-time' } as const;
const capFields = {
  suppressedSinceLast: { type: 'integer', minimum: 1, description: 'Events of this type about this endpoint the storm cap held back since the last one sent.' },
  moreSuppressedUntil: { ...dateTime, description: 'Set on the last event the cap window allows: more of this type about this endpoint are held back until then.' },
} as const;
const deliveryProperties = {
  eventId: { type: 'string', description: 'The event whose delivery this is.' },
  eventType: { type: 'string' },
  endpointId: { type: 'string' },
  reason: { type: ['string', 'null'], description: 'Why it gave up, e.g. "attempts exhausted: HTTP 500".' },
  attempts: { type: 'integer', minimum: 0 },
  lastStatusCode: { type: ['integer', 'null'] },
  ...capFields,
} as const;

export interface OperationalEventTypeInfo {
  description: string;
  schema: Record<string, unknown>;
}

export const OPERATIONAL_EVENT_CATALOGUE: Record<OperationalEventType, OperationalEventTypeInfo> = {
  'hookline.delivery.dead_lettered': {
    description: 'A delivery gave up and is in the dead-letter list (replayable until its retention ends). Never sent for hookline.* deliveries.',
    schema: {
      type: 'object',
      required: ['eventId', 'eventType', 'endpointId', 'reason', 'deadLetteredAt'],
      properties: { ...deliveryProperties, deadLetteredAt: dateTime },
    },
  },
  'hookline.delivery.dropped': {
    description: 'A dead letter was not replayed within its retention and was dropped. Never sent for hookline.* deliveries.',
    schema: {
      type: 'object',
      required: ['eventId', 'eventType', 'endpointId', 'droppedAt'],
      properties: { ...deliveryProperties, droppedAt: dateTime },
    },
  },
  'hookline.endpoint.disabled': {
    description: 'An endpoint was disabled by Hookline (its receiver answered 410 Gone, or it failed for too long); it gets nothing until re-enabled.',
    schema: {
      type: 'object',
      required: ['endpointId', 'reason', 'disabledAt'],
      properties: {
        endpointId: { type: 'string' },
        reason: { type: 'string' },
        disabledAt: dateTime,
        eventId: { type: 'string', description: 'The event whose delivery got the answer that disabled it, when one did.' },
        statusCode: { type: 'integer' },
        ...capFields,
      },
    },
  },
  'hookline.endpoint.circuit_opened': {
    description: "An endpoint's circuit breaker opened after consecutive failed attempts: its deliveries wait while probes test it.",
    schema: {
      type: 'object',
      required: ['endpointId'],
      properties: { endpointId: { type: 'string' }, ...capFields },
    },
  },
  'hookline.endpoint.recovered': {
    description: "An endpoint's circuit breaker closed after a successful probe: its waiting deliveries drain.",
    schema: {
      type: 'object',
      required: ['endpointId'],
      properties: { endpointId: { type: 'string' }, ...capFields },
    },
  },
};

/** Reported when Temporal refuses an event's workflow start for good (see recordStartRefused). */
export const START_REFUSED_TYPE = 'hookline.event.start_refused';

/**
 * hookline.event.start_refused: the relay dead-lettered an event whose workflow start can never
 * succeed (Temporal refused it as invalid, or it has more subscribers than
 * HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT). One per event, not one per delivery: 3,000 dead letters
 * of one refusal are one message. `tenantId` is the event's tenant, for a tenant-scoped emit.
 * Loop guard: nothing for a hookline.* event. Written in the relay's outbox transaction.
 */
export async function recordStartRefused(
  db: Pool | PoolClient,
  d: { tenantId: string; eventId: string; eventType: string; reason: string; deliveries: number },
): Promise<EmitResult | null> {
  if (isOperationalType(d.eventType)) return null;
  // Not in OperationalEventTypes yet (that module is being reworked): the catalogue entry follows.
  const type = START_REFUSED_TYPE as OperationalEventType;
  const data = { eventId: d.eventId, eventType: d.eventType, tenantId: d.tenantId, reason: d.reason, deliveries: d.deliveries, refusedAt: new Date().toISOString() };
  return recordOperationalEvent(db, type, data, { id: operationalEventId(Date.now(), START_REFUSED_TYPE, d.eventId) });
}
