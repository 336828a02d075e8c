// Hookline's own events ("operational webhooks"): things an operator wants to hear about —
// an endpoint disabled, a circuit opened, a delivery dead-lettered. They are ordinary events on
// the reserved `hookline.` type prefix, written with their outbox row (publishEvent), so they are
// delivered, signed, retried and shown in the Web UI like any other; an operator subscribes a URL
// to `hookline.*` (a catch-all endpoint does not get them: see src/matching.ts). This module is
// the one place that emits them, and owns their catalogue entries and these rules:
//
// - Tenancy: each event is published twice, in one transaction. The tenant it concerns gets its
//   own copy, so that tenant's operators (its keys, its portal, its hookline.* endpoints) hear of
//   their own endpoints and nothing of anyone else's; its `reason` and `lastError` name no host,
//   address or port (redactReason). The operator feed (OPERATOR_TENANT, the admin key's alone)
//   gets a copy with the full text and `tenantId`. Two rows rather than one shared row: each copy
//   is then an ordinary event of one tenant, and the relay, fan-out and every read stay as they are.
// - Id space: ids are `evt_op_…` (src/ids.ts), which no producer may submit, and a stored row is
//   taken for "already emitted" only if its type and tenant match (issue #21 item 4).
// - Loop guard: a dead letter or drop of a hookline.* delivery emits nothing, so an operator
//   endpoint that fails cannot feed itself (emitDeliveryEvent).
// - Storm cap: per endpoint and per type, at most `perWindow` events per window (default 10 a
//   minute), counted in Postgres (migration 012) so all workers share it; both copies count once.
//   Past the cap events are counted, not sent; the last one a window allows says so
//   (`moreSuppressedUntil`) and the next one sent carries the count (`suppressedSinceLast`).
//   10,000 dead letters of one endpoint in a minute are 10 events, not 10,000; the dead letters
//   themselves stay in GET /v1/dead-letters.
import { createHash } from 'node:crypto';
import { decodeTime, ulid } from 'ulid';
import { isOperationalType, newOperationalEventId, OPERATIONAL_ID_PREFIX, OPERATIONAL_PREFIX } from './ids';
import { getEvent, publishEvent } from './db/events';
import { getDelivery } from './db/deliveries';
import { updateEndpoint, type EndpointRow } from './db/endpoints';
import { OPERATOR_TENANT } from './db/tenants';
import { countInWindow, subtractReported } from './db/ops-event-windows';
import { isPool, withTransaction, type Pool, type PoolClient } from './db/pool';

export { isOperationalType, OPERATIONAL_PREFIX, OPERATOR_TENANT };

export const OperationalEventTypes = [
  'hookline.endpoint.disabled',
  'hookline.endpoint.circuit_opened',
  'hookline.endpoint.recovered',
  'hookline.delivery.dead_lettered',
  'hookline.delivery.dropped',
  'hookline.event.start_refused',
] as const;
export type OperationalEventType = (typeof OperationalEventTypes)[number];

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
  /** The tenant it concerns; default the tenant of `data.eventId`, else of `data.endpointId`. */
  tenantId?: string;
}

/** `id` is the tenant's copy (the operator feed's when the tenant is unknown or is the feed). */
export type EmitResult = { id: string; outcome: 'created' | 'exists' | 'suppressed' };

/** Records one operational event (and its outbox rows); the relay delivers it as any event. */
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
 * with that id exists) or `exists` (an earlier try of the same transition wrote it). On a pool it
 * opens its own transaction, so the two copies and the cap's count commit together.
 */
export async function recordOperationalEvent(
  db: Pool | PoolClient,
  type: OperationalEventType,
  data: Record<string, unknown>,
  opts: EmitOptions = {},
): Promise<EmitResult> {
  if (isPool(db)) return withTransaction(db, (tx) => recordInTransaction(tx, type, data, opts));
  return recordInTransaction(db, type, data, opts);
}

async function recordInTransaction(db: PoolClient, type: OperationalEventType, data: Record<string, unknown>, opts: EmitOptions): Promise<EmitResult> {
  const tenantId = opts.tenantId ?? (await tenantConcerned(db, data));
  const target = await idToEmit(db, opts.id, type, tenantId);
  if (target.emitted) return { id: target.id, outcome: 'exists' };
  const endpointId = typeof data.endpointId === 'string' ? data.endpointId : null;
  let body: Record<string, unknown> = { ...data, ...(tenantId ? { tenantId } : {}) };
  let reported = 0;
  if (endpointId) {
    const w = await countInWindow(db, endpointId, type, opts.limit ?? DEFAULT_OPS_EVENT_LIMIT);
    if (w.held) return { id: target.id, outcome: 'suppressed' };
    reported = w.suppressed;
    body = {
      ...body,
      ...(w.suppressed > 0 ? { suppressedSinceLast: w.suppressed } : {}),
      ...(w.lastOfWindow ? { moreSuppressedUntil: w.windowEndsAt.toISOString() } : {}),
    };
  }
  for (const [i, c] of copiesOf(target.id, tenantId).entries()) {
    // Version 1: the catalogue's schema (OPERATIONAL_EVENT_CATALOGUE) that `data` follows.
    const { created } = await publishEvent(db, { id: c.id, tenantId: c.tenantId, type, data: c.redact ? redacted(body) : body, version: 1 });
    // A concurrent try of the same transition committed first (this insert waited for it).
    if (!created && i === 0) return { id: c.id, outcome: 'exists' };
  }
  // Subtract what this event reported, not reset: holds counted meanwhile are kept for the next.
  if (reported > 0) {
    await subtractReported(db, endpointId!, type, reported);
  }
  return { id: target.id, outcome: 'created' };
}

/** Where `id`'s copies go: the tenant's (redacted) and the feed's, or the feed's alone. */
function copiesOf(id: string, tenantId: string | null): { id: string; tenantId: string; redact: boolean }[] {
  if (!tenantId || tenantId === OPERATOR_TENANT) return [{ id, tenantId: OPERATOR_TENANT, redact: false }];
  return [{ id, tenantId, redact: true }, { id: siblingId(id, 'operator'), tenantId: OPERATOR_TENANT, redact: false }];
}

/** The tenant of the event, else of the endpoint, the data is about; null when both are gone. */
async function tenantConcerned(db: PoolClient, data: Record<string, unknown>): Promise<string | null> {
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const { rows } = await db.query<{ tenant_id: string | null }>(
    'SELECT COALESCE((SELECT tenant_id FROM events WHERE id = $1), (SELECT tenant_id FROM endpoints WHERE id = $2)) AS tenant_id',
    [str(data.eventId), str(data.endpointId)],
  );
  return rows[0]?.tenant_id ?? null;
}

/**
 * The id to emit under, and whether an earlier try of this transition already did. A stored row
 * counts as that try only if its type and tenant match: one of another type or tenant holding
 * the id (written before ids were reserved, or by hand) is not this transition, and the event
 * goes under a sibling id derived from it instead, the same on every try.
 */
async function idToEmit(db: PoolClient, id: string | undefined, type: string, tenantId: string | null): Promise<{ id: string; emitted: boolean }> {
  if (!id) return { id: newOperationalEventId(), emitted: false };
  const home = copiesOf(id, tenantId)[0].tenantId;
  for (const candidate of [id, siblingId(id, 'taken')]) {
    const stored = await getEvent(db, candidate);
    if (!stored) return { id: candidate, emitted: false };
    if (stored.type === type && stored.tenantId === home) return { id: candidate, emitted: true };
  }
  return { id: newOperationalEventId(), emitted: false };
}

// ---------------------------------------------------------------------------------------------
// What a tenant's copy may say. Delivery errors carry Node's messages, which name the peer
// ("connect ECONNREFUSED 10.0.3.7:443", "getaddrinfo ENOTFOUND hooks.acme-internal.invalid"):
// how Hookline's network resolves and reaches things is the operator's business, not a
// tenant's. So a tenant sees the error code and a fixed phrase for it, never the message; then
// anything still shaped like an address is masked, as a backstop for text this list never saw.

const CODE_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  ETIMEDOUT: 'timed out',
  ECONNECTTIMEOUT: 'connect timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPRIVATETARGET: 'address not allowed',
  EPROTO: 'TLS error',
};

// An error code ("ECONNREFUSED:", "ERR_TLS_CERT_ALTNAME_INVALID:") and the message after it.
const CODE_AND_MESSAGE = /\b([A-Z][A-Z0-9_]{3,}): .*$/s;
const MASKS: [RegExp, string][] = [
  [/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, '<url>'],
  [/\[[0-9a-f:.]*(?:%[\w.-]+)?\](?::\d+)?/gi, '<address>'],
  [/(?<![\w:.])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%[\w.-]+)?(?![\w:])/gi, '<address>'],
  [/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<address>'],
  [/\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}\b(?::\d+)?/gi, '<host>'],
  [/\blocalhost(?::\d+)?\b/gi, '<host>'],
];

/** A failure reason as a tenant may see it: the failure, without hosts, addresses or ports. */
export function redactReason<T extends string | null | undefined>(reason: T): T {
  if (typeof reason !== 'string') return reason;
  let shown: string = reason.replace(CODE_AND_MESSAGE, (_m, code: string) => (CODE_WORDS[code] ? `${code} (${CODE_WORDS[code]})` : code));
  for (const [pattern, mask] of MASKS) shown = shown.replace(pattern, mask);
  return shown as T;
}

const redacted = (d: Record<string, unknown>): Record<string, unknown> => ({
  ...d,
  ...('reason' in d ? { reason: redactReason(d.reason as string | null) } : {}),
  ...('lastError' in d ? { lastError: redactReason(d.lastError as string | null) } : {}),
});

// ---------------------------------------------------------------------------------------------
// Ids and the transitions that emit.

/**
 * An event id that is the same on every try of one transition: `evt_op_` + a ULID whose time
 * part is `timeMs` (so it sorts with events of its time) and whose random part is a hash of
 * `parts`. The prefix is one no producer may submit, so knowing the parts does not let anyone
 * take the id first.
 */
export function operationalEventId(timeMs: number, ...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\0')).digest();
  let i = 0;
  return `${OPERATIONAL_ID_PREFIX}${ulid(timeMs, () => digest[i++] / 256)}`;
}

/** Another deterministic id of the same time, told apart from `id` by `tag`. */
function siblingId(id: string, tag: string): string {
  let timeMs = 0;
  try {
    timeMs = decodeTime(id.slice(OPERATIONAL_ID_PREFIX.length));
  } catch {
    // Not a ULID after the prefix (an id a caller made up): time 0 sorts badly, but the same
    // id must give the same sibling on every try, which the clock would not.
  }
  return operationalEventId(timeMs, 'sibling', id, tag);
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
  loaded: Pick<EndpointRow, 'id' | 'tenantId' | 'updatedAt'>,
  why: { reason: string; eventId?: string; statusCode?: number },
  limit?: OpsEventLimit,
): Promise<void> {
  await withTransaction(pool, async (db) => {
    const row = await updateEndpoint(db, loaded.id, { disabled: true, disabledReason: why.reason });
    if (!row) return; // deleted meanwhile: nothing to report
    const id = disabledEventId(loaded.id, loaded.updatedAt);
    const data = { endpointId: loaded.id, disabledAt: row.updatedAt.toISOString(), ...why };
    await recordOperationalEvent(db, 'hookline.endpoint.disabled', data, { id, limit, tenantId: loaded.tenantId });
  });
}

/** The id of hookline.endpoint.disabled for an endpoint as loaded (enabled) at `updatedAt`. */
export function disabledEventId(endpointId: string, updatedAt: Date): string {
  return operationalEventId(updatedAt.getTime(), 'endpoint.disabled', endpointId, updatedAt.toISOString());
}

// ---------------------------------------------------------------------------------------------
// The catalogue: what GET /v1/event-types and the console show for each operational type. The
// schemas describe `data`; fields beyond them may be added in later versions.

const dateTime = { type: 'string', format: 'date-time' } as const;
const capFields = {
  suppressedSinceLast: { type: 'integer', minimum: 1, description: 'Events of this type about this endpoint the storm cap held back since the last one sent.' },
  moreSuppressedUntil: { ...dateTime, description: 'Set on the last event the cap window allows: more of this type about this endpoint are held back until then.' },
} as const;
const tenantField = {
  tenantId: { type: 'string', description: 'The tenant it concerns. Its own copy says why with no host, address or port; the operator feed (tenant _operator) gets every tenant\'s, in full.' },
} as const;
const deliveryProperties = {
  eventId: { type: 'string', description: 'The event whose delivery this is.' },
  eventType: { type: 'string' },
  endpointId: { type: 'string' },
  ...tenantField,
  reason: { type: ['string', 'null'], description: 'Why it gave up, e.g. "attempts exhausted: HTTP 500" or "attempts exhausted: ECONNREFUSED (connection refused)"; the address is only in the operator feed\'s copy.' },
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
        ...tenantField,
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
      properties: { endpointId: { type: 'string' }, ...tenantField, lastError: { type: ['string', 'null'], description: 'The last failed attempt\'s error (redacted as `reason` is).' }, ...capFields },
    },
  },
  'hookline.endpoint.recovered': {
    description: "An endpoint's circuit breaker closed after a successful probe: its waiting deliveries drain.",
    schema: {
      type: 'object',
      required: ['endpointId'],
      properties: { endpointId: { type: 'string' }, ...tenantField, lastError: { type: ['string', 'null'], description: 'The last failed attempt\'s error (redacted as `reason` is).' }, ...capFields },
    },
  },
  'hookline.event.start_refused': {
    description: 'Temporal refused an event\'s workflow start for good (invalid, or more subscribers than HOOKLINE_MAX_SUBSCRIBERS_PER_EVENT): its deliveries are dead letters with the reason, replayable once the cause is fixed.',
    schema: {
      type: 'object',
      required: ['eventId', 'eventType', 'reason', 'deliveries', 'refusedAt'],
      properties: {
        eventId: { type: 'string' },
        eventType: { type: 'string' },
        ...tenantField,
        reason: { type: 'string' },
        deliveries: { type: 'integer', description: 'How many deliveries were dead-lettered.' },
        refusedAt: dateTime,
      },
    },
  },
};

/** Reported when Temporal refuses an event's workflow start for good (see recordStartRefused). */
export const START_REFUSED_TYPE = 'hookline.event.start_refused' satisfies OperationalEventType;

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
  const type: OperationalEventType = START_REFUSED_TYPE;
  const data = { eventId: d.eventId, eventType: d.eventType, tenantId: d.tenantId, reason: d.reason, deliveries: d.deliveries, refusedAt: new Date().toISOString() };
  return recordOperationalEvent(db, type, data, { id: operationalEventId(Date.now(), START_REFUSED_TYPE, d.eventId) });
}
