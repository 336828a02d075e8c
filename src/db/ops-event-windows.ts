// The storm cap's table, ops_event_windows: one row per (endpoint, operational event type)
// counting the events of its current window and those held back. Written only here; the
// operational events (src/ops-events.ts) decide what the counts mean.
import type { Pool, PoolClient } from './pool';

/**
 * Counts one event against its (endpoint, type) window. A window opens with the first event
 * after the previous one ended (not on clock minutes), so a burst is capped the same wherever it
 * falls. The row lock of the upsert serialises concurrent workers.
 */
export async function countInWindow(db: Pool | PoolClient, endpointId: string, type: string, limit: { perWindow: number; windowMs: number }) {
  const { rows } = await db.query<{ seen: number; suppressed: number; window_start: Date }>(
    `INSERT INTO ops_event_windows AS w (endpoint_id, type, window_start, seen, suppressed)
     VALUES ($1, $2, now(), 1, 0)
     ON CONFLICT (endpoint_id, type) DO UPDATE SET
       window_start = CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) THEN w.window_start ELSE now() END,
       seen = CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) THEN w.seen + 1 ELSE 1 END,
       suppressed = w.suppressed + CASE WHEN w.window_start > now() - make_interval(secs => $3 / 1000.0) AND w.seen >= $4 THEN 1 ELSE 0 END
     RETURNING seen, suppressed, window_start`,
    [endpointId, type, limit.windowMs, limit.perWindow],
  );
  const r = rows[0];
  return {
    held: r.seen > limit.perWindow,
    lastOfWindow: r.seen === limit.perWindow,
    suppressed: r.suppressed,
    windowEndsAt: new Date(r.window_start.getTime() + limit.windowMs),
  };
}

/** Subtracts what an emitted event reported, not reset: holds counted meanwhile are kept for the next. */
export async function subtractReported(db: Pool | PoolClient, endpointId: string, type: string, reported: number): Promise<void> {
  await db.query('UPDATE ops_event_windows SET suppressed = greatest(suppressed - $3, 0) WHERE endpoint_id = $1 AND type = $2', [endpointId, type, reported]);
}
