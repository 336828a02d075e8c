// `hookline listen` sessions: their ids and `listen://` urls, and the sweep of sessions gone past
// their grace. The rows are src/db/listen-sessions.ts's; a session owns one endpoint whose url is
// `listen://<session id>`, and the deliver activity sends that endpoint's attempts through
// listen_requests (src/db/listen-requests.ts) instead of an HTTP POST.
import type { Pool, PoolClient } from '../db/pool';
import { deleteGoneListenEndpoints } from '../db/endpoints';
import { purgeExpiredRequests } from '../db/listen-requests';
import { CONNECTED_STALE_MS } from '../db/listen-sessions';
import { DEFAULT_TENANT } from '../db/tenants';

type Queryable = Pool | PoolClient;

export const LISTEN_SCHEME = 'listen://';
/** Session ids are chosen by the user (`--session laptop`) or made by the API; they sit in a URL. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

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

/**
 * Removes what sessions gone longer than `graceMs` left: their endpoints (the session row goes
 * with its endpoint) and request rows no worker came back for (a worker that died mid-wait).
 * Safe for every API replica to run: each statement deletes what is still there.
 */
export async function sweepSessions(db: Queryable, graceMs: number): Promise<string[]> {
  const removed = await deleteGoneListenEndpoints(db, graceMs, CONNECTED_STALE_MS);
  await purgeExpiredRequests(db);
  return removed;
}
