// The outbox: one row per committed event until a relay has handed it to Temporal. The API
// inserts rows with their events (src/db/events.ts); this module is the relay's side, the one
// writer of a row's relay state: claim, back off after a failed start, delete once handed over.
import type { PoolClient } from './pool';

/** An outbox row, claimed, with what the relay needs to plan the event's deliveries. */
export interface ClaimedEvent {
  event_id: string;
  tenant_id: string;
  only_endpoint_id: string | null;
  type: string;
  channels: string[] | null;
  relay_attempts: number;
  /** The recording request's W3C trace context (tracing on), else null. */
  trace_context: Record<string, string> | null;
}

/** Locks up to `limit` due rows, oldest first, skipping rows another relay holds. Inside a transaction. */
export async function claimOutbox(db: PoolClient, limit: number): Promise<ClaimedEvent[]> {
  const { rows } = await db.query<ClaimedEvent>(
    `SELECT o.event_id, e.tenant_id, e.only_endpoint_id, e.type, e.channels, o.relay_attempts, o.trace_context FROM outbox o JOIN events e ON e.id = o.event_id
     WHERE o.available_at <= now()
     ORDER BY o.created_at, o.event_id
     LIMIT $1 FOR UPDATE OF o SKIP LOCKED`,
    [limit],
  );
  return rows;
}

/** A start that failed and may work later: try again after `delayMs`, keeping the error to show. */
export async function backOffOutbox(db: PoolClient, eventId: string, error: string, delayMs: number): Promise<void> {
  await db.query(
    `UPDATE outbox SET relay_attempts = relay_attempts + 1, last_error = $2,
       available_at = now() + make_interval(secs => $3::double precision / 1000) WHERE event_id = $1`,
    [eventId, error.slice(0, 1000), delayMs],
  );
}

/** Handed over (started, adopted or refused for good): the rows are done. */
export async function deleteOutbox(db: PoolClient, eventIds: string[]): Promise<void> {
  if (eventIds.length > 0) await db.query('DELETE FROM outbox WHERE event_id = ANY($1)', [eventIds]);
}
