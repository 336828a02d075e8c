// test_event_windows: the per-endpoint limit on "send a test event" (POST …/endpoints/:id/test).
// A fixed window per endpoint in Postgres, so every API process counts against one limit; the
// only writer is takeTestEventSlot.
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/**
 * Counts one test event for the endpoint. One statement: a new window starts when the old one
 * has passed; otherwise the count goes up only while under `limit` (a refused call does not
 * extend anything). Returns null when taken, else the milliseconds until the window ends.
 */
export async function takeTestEventSlot(db: Queryable, endpointId: string, limit: number, windowMs: number): Promise<number | null> {
  const { rows } = await db.query<{ taken: boolean; retry_ms: string }>(
    `WITH up AS (
       INSERT INTO test_event_windows AS w (endpoint_id, window_start, count) VALUES ($1, now(), 1)
       ON CONFLICT (endpoint_id) DO UPDATE SET
         window_start = CASE WHEN w.window_start <= now() - $3 * interval '1 millisecond' THEN now() ELSE w.window_start END,
         count = CASE WHEN w.window_start <= now() - $3 * interval '1 millisecond' THEN 1 ELSE w.count + 1 END
       WHERE w.window_start <= now() - $3 * interval '1 millisecond' OR w.count < $2
       RETURNING true AS taken
     )
     SELECT coalesce((SELECT taken FROM up), false) AS taken,
            ceil(extract(epoch FROM (SELECT window_start FROM test_event_windows WHERE endpoint_id = $1)
              + $3 * interval '1 millisecond' - now()) * 1000)::bigint AS retry_ms`,
    [endpointId, limit, windowMs],
  );
  return rows[0].taken ? null : Math.max(1, Number(rows[0].retry_ms));
}
