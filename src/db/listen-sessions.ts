// listen_sessions rows (migration 014): one per `hookline listen` session, written only by the
// API (the listen route and src/listen/hub.ts) through this module. A session owns one endpoint
// whose url is `listen://<session id>` (src/listen/sessions.ts names them); the deliver activity
// sends that endpoint's attempts through listen_requests (src/db/listen-requests.ts) instead of
// an HTTP POST.
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/**
 * How long a session counts as connected after its API last said so. The holding API refreshes
 * it every HEARTBEAT_MS; a few missed beats (that API died or lost the database) make the
 * session offline, so attempts fail fast instead of waiting for a stream nobody serves.
 */
export const HEARTBEAT_MS = 2_000;
export const CONNECTED_STALE_MS = 10_000;

export interface SessionRow {
  id: string;
  endpointId: string;
  holder: string | null;
  lastSeenAt: Date;
  createdAt: Date;
}

const toRow = (r: any): SessionRow => ({
  id: r.id, endpointId: r.endpoint_id, holder: r.holder, lastSeenAt: r.last_seen_at, createdAt: r.created_at,
});

export async function getSession(db: Queryable, id: string, forUpdate = false): Promise<SessionRow | null> {
  const { rows } = await db.query(`SELECT * FROM listen_sessions WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function insertSession(db: PoolClient, id: string, endpointId: string): Promise<SessionRow> {
  const { rows } = await db.query('INSERT INTO listen_sessions (id, endpoint_id) VALUES ($1, $2) RETURNING *', [id, endpointId]);
  return toRow(rows[0]);
}

/** A stream takes the session; a stream that held it before learns at its next heartbeat. */
export async function takeSession(db: Queryable, id: string, holder: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE listen_sessions SET holder = $2, last_seen_at = now() WHERE id = $1', [id, holder]);
  return (rowCount ?? 0) > 0;
}

/** The stream ended: offline from now, unless another stream took the session meanwhile. */
export async function releaseSession(db: Queryable, id: string, holder: string): Promise<void> {
  await db.query('UPDATE listen_sessions SET holder = NULL, last_seen_at = now() WHERE id = $1 AND holder = $2', [id, holder]);
}

/** Refreshes the sessions these streams hold; returns the ids still held by them. */
export async function heartbeat(db: Queryable, held: { id: string; holder: string }[]): Promise<Set<string>> {
  if (held.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `UPDATE listen_sessions s SET last_seen_at = now()
     FROM unnest($1::text[], $2::text[]) AS h(id, holder)
     WHERE s.id = h.id AND s.holder = h.holder RETURNING s.id`,
    [held.map((h) => h.id), held.map((h) => h.holder)],
  );
  return new Set(rows.map((r) => r.id));
}

/** Which of these sessions still exist (a session goes with its endpoint). */
export async function existingSessions(db: Queryable, ids: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM listen_sessions WHERE id = ANY($1)', [ids]);
  return new Set(rows.map((r) => r.id));
}

/**
 * Whether the endpoint is a listen session's and nobody listens now: its deliveries are paused
 * (they wait in their workflows, woken when a listener attaches). Null: not a listen endpoint.
 */
export async function listenerOffline(db: Queryable, endpointId: string): Promise<boolean | null> {
  const { rows } = await db.query(
    `SELECT NOT (holder IS NOT NULL AND last_seen_at > now() - make_interval(secs => $2::double precision / 1000)) AS offline
     FROM listen_sessions WHERE endpoint_id = $1`,
    [endpointId, CONNECTED_STALE_MS],
  );
  return rows[0] ? rows[0].offline : null;
}
