// listen_requests rows (migration 014): one attempt in flight over a listen session. The worker
// inserts it (enqueueRequest) and, at the end, takes it out (takeAnswer / dropRequest); in
// between the API holding the session claims it (claimRequests) and writes the CLI's answer
// (answerRequest). Each step changes columns no other step writes. Also listen_waiters
// (migration 016): the deliveries enqueueRequest found without a listener, until one attaches.
import { currentKeyring, payloadsEncrypted } from '../at-rest';
import type { Pool, PoolClient } from './pool';
import { CONNECTED_STALE_MS } from './listen-sessions';

type Queryable = Pool | PoolClient;

// With HOOKLINE_ENCRYPT_PAYLOADS the payload and the local app's answer (which often echoes it)
// are sealed here as everywhere else, though a row lives only for one request timeout.
const context = (sessionId: string, what: 'request' | 'response') => `listen_${what}:${sessionId}`;
const seal = (sessionId: string, what: 'request' | 'response', text: string | Buffer): string =>
  currentKeyring().encrypt(text, context(sessionId, what));
const open = (sessionId: string, what: 'request' | 'response', stored: string): Buffer =>
  currentKeyring().decrypt(stored, context(sessionId, what));

/** Channel the API LISTENs on: payload = a session id with new requests. */
export const REQUEST_CHANNEL = 'hookline_listen';
/** Channel the worker LISTENs on: payload = the id of an answered request. */
export const ANSWER_CHANNEL = 'hookline_listen_answer';

export interface ListenAnswer {
  status: number | null;
  headers: Record<string, string> | null;
  body: Buffer | null;
  errorCode: string | null;
  errorMessage: string | null;
}

export interface ClaimedRequest {
  requestId: string;
  headers: Record<string, string>;
  body: string;
  /** What is left of the attempt's request timeout. */
  timeoutMs: number;
}

/**
 * Queues one attempt for the session's listener, only while the session is connected (held by a
 * stream whose API beat recently); returns the request id, or null when nobody listens. Then the
 * workflow `waiter` (when given) is noted in listen_waiters, to be woken when a listener attaches.
 * The share lock on the session row orders this against takeSession: either this sees the new
 * holder, or its waiter row exists before the attaching API reads them.
 */
export async function enqueueRequest(
  db: Queryable, sessionId: string, headers: Record<string, string>, body: string, timeoutMs: number, waiter: string | null = null,
): Promise<string | null> {
  const sealing = payloadsEncrypted();
  const { rows } = await db.query<{ id: string | null }>(
    `WITH s AS (
       SELECT id, holder IS NOT NULL AND last_seen_at > now() - make_interval(secs => $5::double precision / 1000) AS connected
       FROM listen_sessions WHERE id = $1 FOR SHARE),
     ins AS (
       INSERT INTO listen_requests (session_id, headers, body, body_sealed, deadline)
       SELECT id, $2, $3, $6, now() + make_interval(secs => $4::double precision / 1000) FROM s WHERE connected
       RETURNING id, session_id),
     waits AS (
       INSERT INTO listen_waiters (session_id, workflow_id) SELECT id, $7 FROM s WHERE NOT connected AND $7::text IS NOT NULL
       ON CONFLICT DO NOTHING)
     SELECT id::text, pg_notify('${REQUEST_CHANNEL}', session_id) FROM ins`,
    [sessionId, headers, sealing ? seal(sessionId, 'request', body) : body, timeoutMs, CONNECTED_STALE_MS, sealing, waiter],
  );
  return rows[0]?.id ?? null;
}

const ANSWER_COLUMNS = 'session_id, answered_at, status, response_headers, response_body, response_sealed, error_code, error_message';
const toAnswer = (r: any): ListenAnswer => {
  const stored: Buffer | null = r.response_body;
  const body = stored && r.response_sealed ? open(r.session_id, 'response', stored.toString('utf8')) : stored;
  return { status: r.status, headers: r.response_headers, body, errorCode: r.error_code, errorMessage: r.error_message };
};

/** The answer, removing the request, once the API wrote one; null while there is none yet. */
export async function takeAnswer(db: Queryable, requestId: string): Promise<ListenAnswer | null> {
  const { rows } = await db.query(
    `DELETE FROM listen_requests WHERE id = $1 AND answered_at IS NOT NULL RETURNING ${ANSWER_COLUMNS}`, [requestId],
  );
  return rows[0] ? toAnswer(rows[0]) : null;
}

/** Gives up on a request (timeout); returns its answer if one arrived at the last moment. */
export async function dropRequest(db: Queryable, requestId: string): Promise<ListenAnswer | null> {
  const { rows } = await db.query(`DELETE FROM listen_requests WHERE id = $1 RETURNING ${ANSWER_COLUMNS}`, [requestId]);
  return rows[0]?.answered_at ? toAnswer(rows[0]) : null;
}

/** Claims the session's unclaimed, unexpired requests for one stream, oldest first. */
export async function claimRequests(db: Queryable, sessionId: string, holder: string, limit = 100): Promise<ClaimedRequest[]> {
  const { rows } = await db.query(
    `UPDATE listen_requests r SET claimed_by = $2
     WHERE r.id IN (SELECT id FROM listen_requests
                    WHERE session_id = $1 AND claimed_by IS NULL AND deadline > now()
                      -- only while this stream still holds the session (not taken over elsewhere)
                      AND EXISTS (SELECT 1 FROM listen_sessions WHERE id = $1 AND holder = $2)
                    ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING r.id::text, r.headers, r.body, r.body_sealed,
               GREATEST(0, floor(extract(epoch FROM r.deadline - now()) * 1000))::int AS timeout_ms`,
    [sessionId, holder, limit],
  );
  return rows
    .map((r) => ({
      requestId: r.id, headers: r.headers, timeoutMs: r.timeout_ms,
      body: r.body_sealed ? open(sessionId, 'request', r.body).toString('utf8') : r.body,
    }))
    .sort((a, b) => Number(a.requestId) - Number(b.requestId));
}

/** Writes the listener's answer and wakes the worker; false when the request is not (or no longer) there. */
export async function answerRequest(db: Queryable, sessionId: string, requestId: string, a: ListenAnswer): Promise<boolean> {
  const sealing = a.body !== null && payloadsEncrypted();
  const { rows } = await db.query(
    `WITH up AS (
       UPDATE listen_requests SET answered_at = now(), status = $3, response_headers = $4, response_body = $5,
              error_code = $6, error_message = $7, response_sealed = $8
       WHERE id = $1 AND session_id = $2 AND answered_at IS NULL RETURNING id)
     SELECT pg_notify('${ANSWER_CHANNEL}', id::text) FROM up`,
    [requestId, sessionId, a.status, a.headers, sealing ? Buffer.from(seal(sessionId, 'response', a.body!), 'utf8') : a.body,
      a.errorCode, a.errorMessage, sealing],
  );
  return rows.length > 0;
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

/** Request rows past their deadline by a minute: no worker is coming back for them. */
export async function purgeExpiredRequests(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM listen_requests WHERE deadline < now() - interval '1 minute'`);
}
