// Events, their outbox rows and the Idempotency-Keys that name them, and retention's deletes of
// old events. With
// HOOKLINE_ENCRYPT_PAYLOADS the payload goes to data_encrypted, sealed (src/at-rest.ts), and is
// opened as rows are read; SQL on `data` sees NULL for such events.
import type { ClientBase } from 'pg';
import { currentKeyring, openEventData, openSecret, payloadsEncrypted, sealEventData } from '../at-rest';
import { isOperationalId, isOperationalType, OPERATIONAL_ID_PREFIX, OPERATIONAL_PREFIX } from '../ids';
import { notifyOutbox, notifyOutboxOnCommit } from './outbox-notify';
import { isPool, type Pool, type PoolClient } from './pool';
import { DEFAULT_TENANT } from './tenants';

/** ClientBase, not PoolClient: the producer library (src/producer) passes its own pg.Client. */
type Queryable = Pool | ClientBase;

export interface EventRow {
  id: string;
  /** The tenant it was published to; only that tenant's endpoints receive it. */
  tenantId: string;
  /** A test event's one endpoint; null for every other event. */
  onlyEndpointId: string | null;
  type: string;
  version: number | null;
  channels: string[] | null;
  data: unknown;
  createdAt: Date;
}

export interface NewEvent {
  id: string;
  /** Default `default` (the tenant of the routes without one, and of Hookline's own events). */
  tenantId?: string;
  /** A test event: delivered to this endpoint only. */
  onlyEndpointId?: string | null;
  type: string;
  version?: number | null;
  channels?: string[] | null;
  data: unknown;
  /** The W3C trace context of the request that recorded it, for the relay (src/telemetry). */
  traceContext?: Record<string, string> | null;
}

const COLUMNS = 'id, tenant_id, only_endpoint_id, type, version, channels, data, data_encrypted, created_at';
const COLUMN_NAMES = COLUMNS.split(', ');
const toRow = (r: any): EventRow => ({
  id: r.id, tenantId: r.tenant_id, onlyEndpointId: r.only_endpoint_id, type: r.type, version: r.version, channels: r.channels, createdAt: r.created_at,
  data: r.data_encrypted === null ? r.data : openEventData(r.id, r.data_encrypted),
});

// The submit path's one statement, as a named prepared statement: Postgres parses and plans it
// once per connection instead of once per event (about a third of its CPU per event; the bench's
// `submit` phase). It returns only what the database chose, created_at: the rest of the row is
// what the caller passed, so the payload is not sent back, parsed again or (sealed) decrypted.
const INSERT_EVENT = {
  name: 'hookline_insert_event_with_outbox',
  text: `WITH e AS (
       INSERT INTO events (id, type, version, channels, data, data_encrypted, tenant_id, only_endpoint_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO NOTHING RETURNING id, created_at
     ), o AS (
       INSERT INTO outbox (event_id, trace_context) SELECT id, $9::jsonb FROM e
     )
     SELECT created_at FROM e`,
};

/**
 * How the relays hear of a published event (src/db/outbox-notify.ts):
 * - `on-commit` (the default inside a transaction): NOTIFY queued in it, delivered at its commit,
 *   dropped on rollback — for a caller that does not own the commit (the producer library);
 * - `after-commit`: the caller calls notifyOutbox(pool) once it committed — for the API's
 *   Idempotency-Key path, where a NOTIFY inside each transaction would serialise commits.
 * On a pool the insert commits on its own and the NOTIFY follows it (coalesced).
 */
export type Wake = 'on-commit' | 'after-commit';

/**
 * The one way an event enters Hookline — the API, the producer library and Hookline's own
 * operational events all come here: the event and its outbox row in one statement (both commit
 * or neither does), then the relays' wake-up. Returns `created: false` (and the stored row) when
 * the id already exists. Event ids are global (they are workflow ids): an id another tenant
 * already used comes back as that tenant's row, and the caller must treat it as a conflict.
 *
 * Operational ids (evt_op_…) carry hookline.* events and nothing else: callers refuse them with
 * a message naming their field first; this is the backstop that keeps the id space unwritable.
 */
export async function publishEvent(db: Queryable, e: NewEvent, wake: Wake = 'on-commit'): Promise<{ event: EventRow; created: boolean }> {
  if (isOperationalId(e.id) !== isOperationalType(e.type)) {
    throw new Error(`event ${e.id} (${e.type}): ${OPERATIONAL_ID_PREFIX} ids are for Hookline's own ${OPERATIONAL_PREFIX}* events, and only they`);
  }
  const result = await insertEventWithOutbox(db, e);
  if (!result.created) return result;
  if (isPool(db)) notifyOutbox(db);
  else if (wake === 'on-commit') await notifyOutboxOnCommit(db);
  return result;
}

async function insertEventWithOutbox(db: Queryable, e: NewEvent): Promise<{ event: EventRow; created: boolean }> {
  const tenantId = e.tenantId ?? DEFAULT_TENANT;
  const onlyEndpointId = e.onlyEndpointId ?? null;
  const version = e.version ?? null;
  const channels = e.channels ?? null;
  // One statement, one round trip: the outbox row is written only if the event row was.
  const inserted = await db.query<{ created_at: Date }>({
    ...INSERT_EVENT,
    values: payloadsEncrypted()
      ? [e.id, e.type, version, channels, null, sealEventData(e.id, e.data), tenantId, onlyEndpointId, e.traceContext ?? null]
      : [e.id, e.type, version, channels, JSON.stringify(e.data), null, tenantId, onlyEndpointId, e.traceContext ?? null],
  });
  const row = inserted.rows[0];
  if (row) return { event: { id: e.id, tenantId, onlyEndpointId, type: e.type, version, channels, data: e.data, createdAt: row.created_at }, created: true };
  const existing = await getEvent(db, e.id);
  if (!existing) throw new Error(`event ${e.id} vanished during insert`);
  return { event: existing, created: false };
}

/** With `tenantId`, an event of another tenant is as absent as one that never existed. */
export async function getEvent(db: Queryable, id: string, tenantId?: string): Promise<EventRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM events WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`, [id, tenantId ?? null]);
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * What one delivery attempt reads besides its endpoint — the event and the endpoint's active
 * signing secrets (newest first) — as columns prefixed `ev_` of the query that loads the
 * endpoint and takes its gate's lease (src/db/gate.ts): one round trip for all three. `ev` is the
 * events row (joined, possibly missing); `endpointParam` the placeholder of the endpoint id.
 */
export function eventAndSecretsColumns(endpointParam: string): string {
  return `${COLUMN_NAMES.map((c) => `ev.${c} AS ev_${c}`).join(', ')}, ARRAY(SELECT secret FROM endpoint_secrets
    WHERE endpoint_id = ${endpointParam} AND (expires_at IS NULL OR expires_at > now()) ORDER BY id DESC) AS ev_secrets`;
}

/** The event and secrets of a row read with eventAndSecretsColumns; null when the event is gone. */
export function toEventAndSecrets(r: any, endpointId: string): { event: EventRow; secrets: string[] } | null {
  if (r.ev_id === null) return null;
  const event = toRow(Object.fromEntries(COLUMN_NAMES.map((c) => [c, r[`ev_${c}`]])));
  return { event, secrets: (r.ev_secrets as string[]).map((s) => openSecret(endpointId, s)) };
}

/**
 * Claims an Idempotency-Key for a new event, or returns who holds it. A concurrent claim of the
 * same key blocks on the unique index until the first transaction ends, so exactly one wins.
 * Keys older than `ttlHours` count as free and are taken over.
 */
export async function claimIdempotencyKey(
  db: PoolClient,
  tenantId: string,
  key: string,
  requestHash: string,
  eventId: string,
  ttlHours: number,
): Promise<{ claimed: true } | { claimed: false; requestHash: string; eventId: string }> {
  // Keys are printable ASCII without spaces (the API checks), so the space cannot occur in a
  // default-tenant key: "acme k" is acme's key "k" and nobody else's.
  const storedKey = tenantId === DEFAULT_TENANT ? key : `${tenantId} ${key}`;
  const { rows } = await db.query(
    `INSERT INTO idempotency_keys (key, request_hash, event_id) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, event_id = EXCLUDED.event_id, created_at = now()
       WHERE idempotency_keys.created_at < now() - make_interval(hours => $4)
     RETURNING key`,
    [storedKey, requestHash, eventId, ttlHours],
  );
  if (rows[0]) return { claimed: true };
  const held = await db.query('SELECT request_hash, event_id FROM idempotency_keys WHERE key = $1', [storedKey]);
  return { claimed: false, requestHash: held.rows[0].request_hash, eventId: held.rows[0].event_id };
}

export async function purgeExpiredIdempotencyKeys(db: Queryable, ttlHours: number): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)',
    [ttlHours],
  );
  return rowCount ?? 0;
}

/**
 * Retention (src/relay/retention.ts): deletes up to `limit` events older than `days` that no
 * workflow needs any more (no outbox row left, every delivery in one of `finalStatuses`), oldest
 * first, their deliveries with them (ON DELETE CASCADE). Rows another transaction holds are
 * skipped, not waited for. Returns the ids deleted.
 */
export async function deleteFinishedEvents(db: Queryable, days: number, limit: number, finalStatuses: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `DELETE FROM events WHERE id IN (
       SELECT e.id FROM events e
       WHERE e.created_at < now() - make_interval(days => $1)
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id)
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status <> ALL($3))
       ORDER BY e.created_at
       LIMIT $2 FOR UPDATE SKIP LOCKED
     ) RETURNING id`,
    [days, limit, finalStatuses],
  );
  return rows.map((r) => r.id);
}

/**
 * `hookline reencrypt`: seals every payload sealed with an older key with the newest one, and
 * (with `sealPlaintext`) every payload still in plaintext, in batches of `batchSize` by id. A row
 * is swapped only if unchanged since it was read. Returns how many rows were sealed.
 */
export async function resealEventPayloads(db: Pool, sealPlaintext: boolean, batchSize = 500): Promise<number> {
  const prefix = `enc:v1:${currentKeyring().primaryId}:`;
  let after = '';
  let sealed = 0;
  for (;;) {
    const { rows } = await db.query<{ id: string; data: unknown; data_encrypted: string | null }>(
      `SELECT id, data, data_encrypted FROM events
       WHERE id > $1 AND (NOT starts_with(data_encrypted, $2) OR ($3 AND data_encrypted IS NULL))
       ORDER BY id LIMIT $4`,
      [after, prefix, sealPlaintext, batchSize],
    );
    if (rows.length === 0) return sealed;
    after = rows[rows.length - 1].id;
    const resealed = rows.map((r) => {
      try {
        return sealEventData(r.id, r.data_encrypted === null ? r.data : openEventData(r.id, r.data_encrypted));
      } catch (err) {
        throw new Error(`cannot read the payload of event ${r.id}: ${(err as Error).message}`);
      }
    });
    const { rowCount } = await db.query(
      `UPDATE events e SET data = NULL, data_encrypted = v.sealed
       FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, old, sealed)
       WHERE e.id = v.id AND e.data_encrypted IS NOT DISTINCT FROM v.old`,
      [rows.map((r) => r.id), rows.map((r) => r.data_encrypted), resealed],
    );
    sealed += rowCount ?? 0;
  }
}
