// listen_sessions rows (migration 014): one per `hookline listen` session, written only by the
// API (the listen route and src/listen/hub.ts). A session owns one endpoint whose url is
// `listen://<session id>`; the deliver activity sends that endpoint's attempts through
// listen_requests (src/listen/requests.ts) instead of an HTTP POST.
import type { Pool, PoolClient } from '../db/pool';
import { DEFAULT_TENANT } from '../db/tenants';

type Queryable = Pool | PoolClient;

export const LISTEN_SCHEME = 'listen://';
/** Session ids are chosen by the user (`--session laptop`) or made by the API; they sit in a URL. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * How long a session counts as connected after its API last said so. The holding API refreshes
 * it every HEARTBEAT_MS; a few missed beats (that API died or lost the database) make the
 * session offline, so attempts fail fast instead of waiting for a stream nobody serves.
 */
export const HEARTBEAT_MS = 2_000;
export const CONNECTED_STALE_MS = 10_000;

/**
 * A session's row id (and its `listen://` url): the name the user chose in the default tenant,
 * `<tenant>/<name>` in any other. Neither names nor tenant ids contain '/', so each tenant has its
 * own names, and a session id looked up in the wrong tenant finds nothing (404).
 */
export const sessionKey = (tenantId: string, name: string): string => (tenantId === DEFAULT_TENANT ? name : `${tenantId}/${name}`);
/** The name the user knows a session by (the part after the tenant). */
export const sessionName = (key: string): string => key.slice(key.indexOf('/') + 1);

export const listenUrl = (sessionId: string): string => `${LISTEN_SCHEME}${sessionId}`;
export const isListenUrl = (url: string): boolean => url.toLowerCase().startsWith(LISTEN_SCHEME);
export const sessionOfUrl = (url: string): string => url.slice(LISTEN_SCHEME.length).replace(/\/+$/, '');

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
 * Removes what sessions gone longer than `graceMs` left: their endpoints (the session row goes
 * with its endpoint) and request rows no worker came back for (a worker that died mid-wait).
 * Safe for every API replica to run: each statement deletes what is still there.
 */
export async function sweepSessions(db: Queryable, graceMs: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `DELETE FROM endpoints e USING listen_sessions s
     WHERE s.endpoint_id = e.id AND s.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
       -- never one a live stream holds, however short the grace
       AND (s.holder IS NULL OR s.last_seen_at < now() - make_interval(secs => $2::double precision / 1000))
     RETURNING e.id`,
    [graceMs, CONNECTED_STALE_MS],
  );
  await db.query(`DELETE FROM listen_requests WHERE deadline < now() - interval '1 minute'`);
  return rows.map((r) => r.id);
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

/**
 * A listener attached: takes the deliveries that waited for it (listen_waiters, migration 016),
 * for the caller to wake (a gateOpen signal to each workflow).
 */
export async function takeWaiters(db: Queryable, id: string): Promise<{ workflowId: string; endpointId: string }[]> {
  const { rows } = await db.query(
    `DELETE FROM listen_waiters w USING listen_sessions s WHERE w.session_id = $1 AND s.id = w.session_id
     RETURNING w.workflow_id, s.endpoint_id`,
    [id],
  );
  return rows.map((r) => ({ workflowId: r.workflow_id, endpointId: r.endpoint_id }));
}
