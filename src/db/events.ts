// Events, their outbox rows and the Idempotency-Keys that name them.
import type { ClientBase } from 'pg';
import type { Pool, PoolClient } from './pool';

/** ClientBase, not PoolClient: the producer library (src/producer) passes its own pg.Client. */
type Queryable = Pool | ClientBase;

export interface EventRow {
  id: string;
  type: string;
  version: number | null;
  channels: string[] | null;
  data: unknown;
  createdAt: Date;
}

export interface NewEvent {
  id: string;
  type: string;
  version?: number | null;
  channels?: string[] | null;
  data: unknown;
}

const COLUMNS = 'id, type, version, channels, data, created_at';
const toRow = (r: any): EventRow => ({
  id: r.id, type: r.type, version: r.version, channels: r.channels, data: r.data, createdAt: r.created_at,
});

/**
 * Inserts the event and its outbox row in one statement, so both commit or neither does, inside
 * the caller's transaction or on its own. Returns `created: false` (and the stored row) when the
 * id already exists.
 */
export async function insertEventWithOutbox(db: Queryable, e: NewEvent): Promise<{ event: EventRow; created: boolean }> {
  // One statement, one round trip: the outbox row is written only if the event row was.
  const inserted = await db.query(
    `WITH e AS (
       INSERT INTO events (id, type, version, channels, data) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}
     ), o AS (
       INSERT INTO outbox (event_id) SELECT id FROM e
     )
     SELECT * FROM e`,
    [e.id, e.type, e.version ?? null, e.channels ?? null, JSON.stringify(e.data)],
  );
  if (inserted.rows[0]) return { event: toRow(inserted.rows[0]), created: true };
  const existing = await getEvent(db, e.id);
  if (!existing) throw new Error(`event ${e.id} vanished during insert`);
  return { event: existing, created: false };
}

export async function getEvent(db: Queryable, id: string): Promise<EventRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM events WHERE id = $1`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * Claims an Idempotency-Key for a new event, or returns who holds it. A concurrent claim of the
 * same key blocks on the unique index until the first transaction ends, so exactly one wins.
 * Keys older than `ttlHours` count as free and are taken over.
 */
export async function claimIdempotencyKey(
  db: PoolClient,
  key: string,
  requestHash: string,
  eventId: string,
  ttlHours: number,
): Promise<{ claimed: true } | { claimed: false; requestHash: string; eventId: string }> {
  const { rows } = await db.query(
    `INSERT INTO idempotency_keys (key, request_hash, event_id) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, event_id = EXCLUDED.event_id, created_at = now()
       WHERE idempotency_keys.created_at < now() - make_interval(hours => $4)
     RETURNING key`,
    [key, requestHash, eventId, ttlHours],
  );
  if (rows[0]) return { claimed: true };
  const held = await db.query('SELECT request_hash, event_id FROM idempotency_keys WHERE key = $1', [key]);
  return { claimed: false, requestHash: held.rows[0].request_hash, eventId: held.rows[0].event_id };
}

export async function purgeExpiredIdempotencyKeys(db: Queryable, ttlHours: number): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)',
    [ttlHours],
  );
  return rowCount ?? 0;
}
