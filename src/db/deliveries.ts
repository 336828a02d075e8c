// Deliveries (one per event × endpoint) and their attempts: what the API reads and the
// activities write.
import { isUtf8 } from 'node:buffer';
import type { Pool, PoolClient } from './pool';
import { DEFAULT_TENANT } from './tenants';
import { currentKeyring, openResponseBody, sealedResponseBody, sealResponseBody } from '../at-rest';
import type { GateRelease } from './gate';

type Queryable = Pool | PoolClient;

export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'dead_lettered' | 'dropped';

export interface DeliveryRow {
  eventId: string;
  endpointId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  reason: string | null;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | null;
  deadLetteredAt: Date | null;
}

export interface AttemptRow {
  attempt: number;
  startedAt: Date;
  latencyMs: number;
  statusCode: number | null;
  error: string | null;
  outcome: 'delivered' | 'retrying' | 'failed';
  /** UTF-8 text when the receiver sent valid UTF-8, else base64 of its bytes (see responseBodyEncoding). */
  responseBody: string | null;
  responseBodyEncoding: 'utf8' | 'base64' | null;
}

const COLUMNS = `event_id, endpoint_id, event_type, status, attempts, last_status_code, last_error, reason,
  created_at, updated_at, delivered_at, dead_lettered_at`;
const toRow = (r: any): DeliveryRow => ({
  eventId: r.event_id, endpointId: r.endpoint_id, eventType: r.event_type, status: r.status,
  attempts: r.attempts, lastStatusCode: r.last_status_code, lastError: r.last_error, reason: r.reason,
  createdAt: r.created_at, updatedAt: r.updated_at, deliveredAt: r.delivered_at, deadLetteredAt: r.dead_lettered_at,
});

/** The delivery rows of an event, in the event's tenant (listing and stats read it from here). */
export async function ensureDeliveries(db: Queryable, eventId: string, eventType: string, endpointIds: string[], tenantId = DEFAULT_TENANT): Promise<void> {
  if (endpointIds.length === 0) return;
  await db.query(
    `INSERT INTO deliveries (event_id, endpoint_id, event_type, status, tenant_id)
     SELECT $1, unnest($3::text[]), $2, 'pending', $4 ON CONFLICT DO NOTHING`,
    [eventId, eventType, endpointIds, tenantId],
  );
}

/** The delivery rows of many events in one statement (the relay plans a batch at a time). */
export async function ensureDeliveriesOfEvents(
  db: Queryable,
  plans: { eventId: string; eventType: string; tenantId: string; endpoints: PlannedEndpoint[] }[],
): Promise<void> {
  // In key order, so two writers of overlapping rows (relays, a replay's adopt) lock them in the
  // same order and cannot deadlock each other.
  const rows = plans.flatMap((p) => p.endpoints.map((ep) => ({ e: p.eventId, ep: ep.id, t: p.eventType, tn: p.tenantId, plan: JSON.stringify(ep) })))
    .sort((a, b) => (a.e === b.e ? (a.ep < b.ep ? -1 : a.ep > b.ep ? 1 : 0) : a.e < b.e ? -1 : 1));
  if (rows.length === 0) return;
  // Each row keeps its plan (migration 020): a large fan-out's children load it from here.
  await db.query(
    `INSERT INTO deliveries (event_id, endpoint_id, event_type, status, tenant_id, plan)
     SELECT e, ep, t, 'pending', tn, p::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(e, ep, t, tn, p)
     ON CONFLICT DO NOTHING`,
    [rows.map((r) => r.e), rows.map((r) => r.ep), rows.map((r) => r.t), rows.map((r) => r.tn), rows.map((r) => r.plan)],
  );
}

/** What a delivery row's plan holds: src/subscriptions.ts's ResolvedEndpoint (kept as JSON). */
export interface PlannedEndpoint {
  id: string;
}

/** A key range of an event's delivery rows, by endpoint id: (after, upTo], open where null. */
export interface DeliveryRange {
  after: string | null;
  upTo: string | null;
  /** Ids in the range to leave out (a run delivers them already). */
  exclude?: string[];
}

/**
 * The event's deliveries nobody has attempted yet ('pending') in a range, in endpoint-id byte
 * order (COLLATE "C", as the workflow compares ids to route a replay to the slice's child),
 * with their plans (null for rows without one). A large fan-out's parent splits these into
 * slices; each child loads its slice with the same query.
 */
export async function pendingDeliveries(db: Queryable, eventId: string, range: DeliveryRange, withPlans = true): Promise<{ endpointId: string; plan: unknown }[]> {
  // Without plans (a parent only cutting slices): 10,000 ids, not 10,000 plans of up to ~1 KB.
  const { rows } = await db.query(
    `SELECT endpoint_id, ${withPlans ? 'plan' : 'NULL AS plan'} FROM deliveries
     WHERE event_id = $1 AND status = 'pending'
       AND ($2::text IS NULL OR endpoint_id COLLATE "C" > $2) AND ($3::text IS NULL OR endpoint_id COLLATE "C" <= $3)
       AND NOT (endpoint_id = ANY($4::text[]))
     ORDER BY endpoint_id COLLATE "C"`,
    [eventId, range.after, range.upTo, range.exclude ?? []],
  );
  return rows.map((r) => ({ endpointId: r.endpoint_id, plan: r.plan }));
}

/** Whether any of the event's deliveries was never attempted (the relay's check on a closed run). */
export async function hasPendingDeliveries(db: Queryable, eventId: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE event_id = $1 AND status = 'pending') AS any`, [eventId]);
  return rows[0].any;
}

/**
 * An event no workflow will deliver (Temporal refused its start as invalid, or it has more
 * subscribers than allowed): its pending deliveries become dead letters with the reason, so
 * they show in GET /v1/dead-letters and a replay can send them. Returns how many.
 */
export async function deadLetterPending(db: Queryable, eventId: string, reason: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deliveries SET status = 'dead_lettered', reason = $2, updated_at = now(), dead_lettered_at = now()
     WHERE event_id = $1 AND status = 'pending'`,
    [eventId, storableText(reason)],
  );
  return rowCount ?? 0;
}

export interface NewAttempt {
  eventId: string;
  endpointId: string;
  startedAt: Date;
  latencyMs: number;
  statusCode: number | null;
  error: string | null;
  outcome: AttemptRow['outcome'];
  /** The receiver's bytes, or the text they were decoded to; stored as bytes either way. */
  responseBody: string | Buffer | null;
}

/**
 * Text Postgres can store: it refuses NUL in text columns. An error message can carry a
 * receiver's bytes (a status line, a parse error), so NULs become U+FFFD; lone surrogates are
 * already written as U+FFFD by the driver's UTF-8 encoding.
 */
export const storableText = (s: string | null): string | null => (s === null ? null : s.replace(/\u0000/g, '\ufffd'));

const toBytes = (body: string | Buffer | null): Buffer | null => (body === null || Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));

/** Bytes as the API shows them: UTF-8 text when they are valid UTF-8, else base64. */
export function responseBodyOut(bytes: Buffer | null): Pick<AttemptRow, 'responseBody' | 'responseBodyEncoding'> {
  if (bytes === null) return { responseBody: null, responseBodyEncoding: null };
  return isUtf8(bytes)
    ? { responseBody: bytes.toString('utf8'), responseBodyEncoding: 'utf8' }
    : { responseBody: bytes.toString('base64'), responseBodyEncoding: 'base64' };
}

/**
 * Appends an attempt and moves the delivery on; returns the attempt's 1-based number. Nothing a
 * receiver sends can make this fail: after a 2xx a failure here would retry the activity, and so
 * POST a delivered webhook again.
 */
export async function recordAttempt(db: Queryable, a: NewAttempt): Promise<number> {
  return (await recordAttemptReleasing(db, a)).attempt;
}

// The gate's release (src/db/gate.ts owns the function and builds its arguments), called in the
// attempt's statement; its eight arguments follow the attempt's ten.
const RELEASE = 'SELECT transition, wake FROM gate_release($11, $12, $13, $14, $15, $16, $17, $18)';
const NO_RELEASE = 'SELECT NULL::text AS transition, NULL::text AS wake';

/**
 * recordAttempt, plus (given `release`) the endpoint gate's release in the same statement, so
 * an attempt's outcome frees its lease and moves the circuit breaker without another round trip
 * (src/db/gate.ts). Returns the attempt number, the gate's transition and the waiter it woke.
 */
export async function recordAttemptReleasing(
  db: Queryable,
  a: NewAttempt,
  release?: GateRelease,
): Promise<{ attempt: number; transition: string | null; wake: string | null }> {
  const status: DeliveryStatus = a.outcome === 'delivered' ? 'delivered' : 'delivering';
  const raw = toBytes(a.responseBody);
  const body = raw === null ? null : sealResponseBody(a.eventId, a.endpointId, raw);
  const values = [a.eventId, a.endpointId, a.startedAt, a.latencyMs, a.statusCode, storableText(a.error), a.outcome, status, body?.bytes ?? null, body?.sealed ?? false];
  const gate = release ? RELEASE : NO_RELEASE;
  const { rows } = await db.query(
    `WITH d AS (
       UPDATE deliveries SET attempts = attempts + 1, last_status_code = $5, last_error = $6, status = $8,
         reason = NULL, updated_at = now(),
         delivered_at = CASE WHEN $8 = 'delivered' THEN now() ELSE delivered_at END
       WHERE event_id = $1 AND endpoint_id = $2 RETURNING attempts, tenant_id
     ), ins AS (
       INSERT INTO attempts (event_id, endpoint_id, attempt, started_at, latency_ms, status_code, error, outcome, response_body, response_body_sealed, tenant_id)
       SELECT $1, $2, d.attempts, $3, $4, $5, $6, $7, $9, $10, d.tenant_id FROM d RETURNING attempt
     ), g AS (${gate})
     SELECT ins.attempt, g.transition, g.wake FROM g LEFT JOIN ins ON true`,
    [...values, ...(release ?? [])],
  );
  return { attempt: rows[0]?.attempt ?? 0, transition: rows[0]?.transition ?? null, wake: rows[0]?.wake ?? null };
}

export async function setDeliveryStatus(
  db: Queryable,
  eventId: string,
  endpointId: string,
  status: DeliveryStatus,
  reason: string | null = null,
): Promise<void> {
  await db.query(
    `UPDATE deliveries SET status = $3, reason = $4, updated_at = now(),
       dead_lettered_at = CASE WHEN $3 = 'dead_lettered' THEN now() ELSE dead_lettered_at END
     WHERE event_id = $1 AND endpoint_id = $2`,
    [eventId, endpointId, status, storableText(reason)],
  );
}

/** With `tenantId` (every API route passes it), another tenant's delivery reads as absent. */
export async function getDelivery(db: Queryable, eventId: string, endpointId: string, tenantId?: string): Promise<DeliveryRow | null> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM deliveries WHERE event_id = $1 AND endpoint_id = $2 AND ($3::text IS NULL OR tenant_id = $3)`,
    [eventId, endpointId, tenantId ?? null],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * The first `limit` deliveries of an event by endpoint id, and how many it has in all: an event
 * fanned out to thousands of endpoints must not come back as one unbounded answer.
 */
export async function deliveriesForEvent(db: Queryable, eventId: string, limit: number): Promise<{ data: DeliveryRow[]; total: number }> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS}, count(*) OVER () AS total FROM deliveries WHERE event_id = $1 ORDER BY endpoint_id LIMIT $2`,
    [eventId, limit],
  );
  // Past the end of a non-empty set the window gives no row: only an empty event reads 0 here.
  return { data: rows.map(toRow), total: rows[0] ? Number(rows[0].total) : 0 };
}

export interface DeliveryFilter {
  tenantId: string;
  status?: DeliveryStatus;
  /** One event's deliveries (GET /v1/events/:id links here when it shows only the first ones). */
  eventId?: string;
  endpointId?: string;
  eventType?: string;
  /** Dead letters only: parked at or after this time. */
  since?: Date;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

// The cursor's time to the microsecond, as Postgres stores it: a JS Date keeps milliseconds, and
// rows written by one statement (a fan-out's deliveries) share a created_at, so a cursor cut to
// the millisecond compared every later row of that statement as newer and skipped them all.
const CURSOR_TIME_SQL = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time`;
const encodeCursor = (r: { cursor_time: string; event_id: string; endpoint_id: string }) =>
  Buffer.from(JSON.stringify([r.cursor_time, r.event_id, r.endpoint_id])).toString('base64url');

// What encodeCursor writes (and wrote before, to the millisecond): an ISO timestamp and two ids.
// Anything else (a NUL, a date Postgres cannot read) would reach SQL as a parameter and fail
// there, so it is refused here.
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(\d{3}|\d{6})Z$/;
const CURSOR_ID = /^[\x21-\x7e]{1,128}$/;

function decodeCursor(cursor: string): [string, string, string] {
  const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((p) => typeof p === 'string')) {
    throw new Error('bad cursor');
  }
  const [time, eventId, endpointId] = parsed as [string, string, string];
  if (!CURSOR_TIME.test(time) || Number.isNaN(Date.parse(time)) || !CURSOR_ID.test(eventId) || !CURSOR_ID.test(endpointId)) {
    throw new Error('bad cursor');
  }
  return [time, eventId, endpointId];
}

export class BadCursorError extends Error {}

/** Newest first, keyset-paginated with an opaque cursor. */
export async function listDeliveries(db: Queryable, f: DeliveryFilter, limit: number, cursor?: string): Promise<Page<DeliveryRow>> {
  let after: [string, string, string] | null = null;
  if (cursor) {
    try {
      after = decodeCursor(cursor);
    } catch {
      throw new BadCursorError('cursor is not one this API returned');
    }
  }
  const { rows } = await db.query(
    `SELECT ${COLUMNS}, ${CURSOR_TIME_SQL} FROM deliveries
     WHERE tenant_id = $9
       AND ($1::text IS NULL OR status = $1)
       AND ($2::text IS NULL OR endpoint_id = $2)
       AND ($3::text IS NULL OR event_type = $3)
       AND ($4::timestamptz IS NULL OR dead_lettered_at >= $4)
       AND ($5::timestamptz IS NULL OR (created_at, event_id, endpoint_id) < ($5, $6, $7))
       AND ($10::text IS NULL OR event_id = $10)
     ORDER BY created_at DESC, event_id DESC, endpoint_id DESC
     LIMIT $8`,
    [f.status ?? null, f.endpointId ?? null, f.eventType ?? null, f.since ?? null,
      after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, limit + 1, f.tenantId, f.eventId ?? null],
  );
  const data = rows.slice(0, limit).map(toRow);
  return { data, nextCursor: rows.length > limit ? encodeCursor(rows[limit - 1]) : null };
}

/** A batch of dead letters for bulk replay, and where the next batch starts. */
export interface DeadLetterBatch {
  data: DeliveryRow[];
  /** Opaque; null when this batch reached the end. */
  nextCursor: string | null;
  /** Matches after this batch (what a caller looping with nextCursor has left). */
  remaining: number;
}

// Ordered by (event_id, endpoint_id), the primary key: it never changes, so a dead letter that
// is replayed and dead-letters again stays behind the cursor and a loop over batches ends.
const encodeReplayCursor = (d: DeliveryRow) => Buffer.from(JSON.stringify([d.eventId, d.endpointId])).toString('base64url');

function decodeReplayCursor(cursor: string): [string, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadCursorError('cursor is not one this API returned');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !parsed.every((p) => typeof p === 'string' && CURSOR_ID.test(p))) {
    throw new BadCursorError('cursor is not one this API returned');
  }
  return parsed as [string, string];
}

/**
 * At most `limit` dead letters matching the filter, after `cursor`: bulk replay loads and
 * signals one bounded batch per request, never a tenant's whole dead-letter set. Skips dead
 * letters of disabled or deleted endpoints when asked, and events still in the outbox (not
 * relayed: a replay would start their workflow for these endpoints only).
 */
export async function deadLetterBatch(
  db: Queryable,
  f: Omit<DeliveryFilter, 'status'> & { activeEndpointsOnly?: boolean },
  limit: number,
  cursor?: string,
): Promise<DeadLetterBatch> {
  const after = cursor ? decodeReplayCursor(cursor) : null;
  const match = `status = 'dead_lettered' AND tenant_id = $5
       AND ($1::text IS NULL OR endpoint_id = $1)
       AND ($2::text IS NULL OR event_type = $2)
       AND ($3::timestamptz IS NULL OR dead_lettered_at >= $3)
       AND (NOT $4 OR EXISTS (SELECT 1 FROM endpoints e WHERE e.id = d.endpoint_id AND NOT e.disabled))
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = d.event_id)
       AND ($6::text IS NULL OR (event_id, endpoint_id) > ($6, $7))`;
  const values = [f.endpointId ?? null, f.eventType ?? null, f.since ?? null, f.activeEndpointsOnly ?? false, f.tenantId, after?.[0] ?? null, after?.[1] ?? null];
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM deliveries d WHERE ${match} ORDER BY event_id, endpoint_id LIMIT $8`, [...values, limit]);
  const data = rows.map(toRow);
  if (data.length < limit) return { data, nextCursor: null, remaining: 0 };
  const last = data[data.length - 1];
  const { rows: left } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM deliveries d WHERE ${match}`,
    [...values.slice(0, 5), last.eventId, last.endpointId],
  );
  return { data, nextCursor: left[0].n > 0 ? encodeReplayCursor(last) : null, remaining: left[0].n };
}

export async function listAttempts(db: Queryable, eventId: string, endpointId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query(
    `SELECT attempt, started_at, latency_ms, status_code, error, outcome, response_body, response_body_sealed FROM attempts
     WHERE event_id = $1 AND endpoint_id = $2 ORDER BY id`,
    [eventId, endpointId],
  );
  return rows.map((r) => ({
    attempt: r.attempt, startedAt: r.started_at, latencyMs: r.latency_ms, statusCode: r.status_code,
    error: r.error, outcome: r.outcome,
    ...responseBodyOut(r.response_body_sealed ? openResponseBody(eventId, endpointId, r.response_body) : r.response_body),
  }));
}

/**
 * Retention (src/relay/retention.ts): the attempts of events it deleted. attempts has no foreign
 * key (it is append-only and written hot), so they go by event id. Returns how many.
 */
export async function deleteAttemptsOfEvents(db: Queryable, eventIds: string[]): Promise<number> {
  if (eventIds.length === 0) return 0;
  return (await db.query('DELETE FROM attempts WHERE event_id = ANY($1)', [eventIds])).rowCount ?? 0;
}

/**
 * `hookline reencrypt`: seals stored response bodies under the newest key, so older keys can be
 * removed. Only bodies already sealed are touched (plaintext ones stay as the receiver sent them).
 */
export async function resealResponseBodies(db: Pool, batchSize = 500): Promise<number> {
  const prefix = `enc:v1:${currentKeyring().primaryId}:`;
  let after = 0;
  let resealed = 0;
  for (;;) {
    const { rows } = await db.query<{ id: string; event_id: string; endpoint_id: string; response_body: Buffer }>(
      `SELECT id, event_id, endpoint_id, response_body FROM attempts
       WHERE id > $1 AND response_body_sealed AND NOT starts_with(convert_from(response_body, 'UTF8'), $2)
       ORDER BY id LIMIT $3`,
      [after, prefix, batchSize],
    );
    if (rows.length === 0) return resealed;
    after = Number(rows[rows.length - 1].id);
    for (const r of rows) {
      const body = openResponseBody(r.event_id, r.endpoint_id, r.response_body);
      const { rowCount } = await db.query(
        'UPDATE attempts SET response_body = $2 WHERE id = $1 AND response_body = $3',
        [r.id, sealedResponseBody(r.event_id, r.endpoint_id, body), r.response_body],
      );
      resealed += rowCount ?? 0;
    }
  }
}
