// Wakes relays once events are in the outbox: NOTIFY on the channel the relay LISTENs to.
//
// Sent after the writer's commit, never inside it: a transaction that NOTIFYs takes Postgres's
// database-wide notify lock at commit and holds it across the WAL flush, so one NOTIFY per
// event made concurrent submissions commit one at a time (migration 006 removed that trigger).
// Coalesced per pool: at most one NOTIFY in flight, and any number of events committed while it
// runs (or within NOTIFY_MIN_GAP_MS after) cause exactly one more — the relay drains the whole
// outbox on each wake anyway. A process that dies between its commit and its NOTIFY leaves the
// event to the relay's poll.
import type { ClientBase } from 'pg';
import type { Pool } from './pool';

export const OUTBOX_CHANNEL = 'hookline_outbox';
const NOTIFY_SQL = `SELECT pg_notify('${OUTBOX_CHANNEL}', '')`;

/**
 * Under sustained load, NOTIFYs are at least this far apart: the relay drains the whole outbox
 * per wake, so more wakes would only cost round trips. The first event after a quiet spell is
 * notified at once, so light-load latency does not pay this.
 */
export const NOTIFY_MIN_GAP_MS = 10;

interface NotifyState {
  busy: boolean;
  again: boolean;
}

const states = new WeakMap<Pool, NotifyState>();

/** After a commit that added outbox rows: wake the relays (fire and forget; never throws). */
export function notifyOutbox(pool: Pool): void {
  let s = states.get(pool);
  if (!s) states.set(pool, (s = { busy: false, again: false }));
  if (s.busy) {
    s.again = true;
    return;
  }
  s.busy = true;
  sendNotify(pool, s);
}

function sendNotify(pool: Pool, s: NotifyState): void {
  s.again = false;
  // A failed NOTIFY (database restarting) only delays the relay until its next poll.
  void pool.query(NOTIFY_SQL).catch(() => {}).finally(() => {
    // Busy until the gap has passed; commits meanwhile are covered by one more NOTIFY after it.
    setTimeout(() => {
      if (s.again) sendNotify(pool, s);
      else s.busy = false;
    }, NOTIFY_MIN_GAP_MS).unref();
  });
}
/**
 * Inside a caller's transaction (the producer library, which does not own the commit): NOTIFY
 * is delivered when that transaction commits, and dropped if it rolls back.
 */
export async function notifyOutboxOnCommit(db: ClientBase): Promise<void> {
  await db.query(NOTIFY_SQL);
}
