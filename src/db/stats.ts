// Read-only aggregates for operators: one endpoint's health (GET /v1/endpoints/:id/stats) and
// the backlog figures the API's /metrics computes at scrape time. Every query here is bounded by
// an index (attempts by endpoint and time, deliveries by status, the outbox), so a scrape stays
// cheap however much history the tables hold.
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** Most failing attempts a streak counts; past this it reads "at least". */
export const STREAK_CAP = 10_000;
const LAST_FAILURES = 5;

export interface EndpointStats {
  since: Date;
  attempts: { total: number; succeeded: number; failed: number };
  /** succeeded / total over the window; null without attempts. */
  successRate: number | null;
  /** Latency of attempts that got an HTTP response (timeouts and refused connections are failures, not latency). */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  /** Deliveries created in the window, by their current status. */
  deliveries: { pending: number; delivering: number; delivered: number; deadLettered: number; dropped: number };
  /** Failed attempts since the last success, across all time (capped at STREAK_CAP). */
  consecutiveFailures: number;
  lastSuccessAt: Date | null;
  lastFailures: { eventId: string; attempt: number; startedAt: Date; statusCode: number | null; error: string | null }[];
}

export async function endpointStats(db: Queryable, endpointId: string, since: Date): Promise<EndpointStats> {
  const [window, deliveries, streak, failures] = await Promise.all([
    db.query(
      `SELECT count(*) AS total,
              count(*) FILTER (WHERE outcome = 'delivered') AS succeeded,
              percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
                FILTER (WHERE status_code IS NOT NULL) AS pct
       FROM attempts WHERE endpoint_id = $1 AND started_at >= $2`,
      [endpointId, since],
    ),
    db.query(
      `SELECT status, count(*) AS n FROM deliveries
       WHERE endpoint_id = $1 AND created_at >= $2 GROUP BY status`,
      [endpointId, since],
    ),
    db.query(
      `WITH last_ok AS (
         SELECT max(started_at) AS at FROM attempts WHERE endpoint_id = $1 AND outcome = 'delivered'
       )
       SELECT (SELECT at FROM last_ok) AS last_success_at,
              (SELECT count(*) FROM (
                 SELECT 1 FROM attempts, last_ok
                 WHERE endpoint_id = $1 AND outcome <> 'delivered' AND started_at > coalesce(last_ok.at, '-infinity')
                 LIMIT $2) s) AS streak`,
      [endpointId, STREAK_CAP],
    ),
    db.query(
      `SELECT event_id, attempt, started_at, status_code, error FROM attempts
       WHERE endpoint_id = $1 AND outcome <> 'delivered'
       ORDER BY started_at DESC, id DESC LIMIT $2`,
      [endpointId, LAST_FAILURES],
    ),
  ]);
  return {
    since,
    ...windowFigures(window.rows[0], deliveries.rows),
    consecutiveFailures: Number(streak.rows[0].streak),
    lastSuccessAt: streak.rows[0].last_success_at,
    lastFailures: failures.rows.map((r) => ({
      eventId: r.event_id, attempt: r.attempt, startedAt: r.started_at, statusCode: r.status_code, error: r.error,
    })),
  };
}

export interface BacklogSnapshot {
  outbox: { backlog: number; oldestAgeSeconds: number; retrying: number };
  /** Per endpoint (and its tenant): deliveries not finished yet, and dead letters waiting for a replay. */
  open: { tenantId: string; endpointId: string; inProgress: number; deadLettered: number }[];
}

/** What /metrics reports from the database: the relay's backlog and the open deliveries. */
export async function backlogSnapshot(db: Queryable): Promise<BacklogSnapshot> {
  const [outbox, open] = await Promise.all([
    db.query(
      `SELECT count(*) AS backlog,
              coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age,
              count(*) FILTER (WHERE relay_attempts > 0) AS retrying
       FROM outbox`,
    ),
    db.query(
      `SELECT tenant_id, endpoint_id,
              count(*) FILTER (WHERE status IN ('pending', 'delivering')) AS in_progress,
              count(*) FILTER (WHERE status = 'dead_lettered') AS dead_lettered
       FROM deliveries WHERE status IN ('pending', 'delivering', 'dead_lettered')
       GROUP BY tenant_id, endpoint_id`,
    ),
  ]);
  const o = outbox.rows[0];
  return {
    outbox: { backlog: Number(o.backlog), oldestAgeSeconds: Number(o.oldest_age), retrying: Number(o.retrying) },
    open: open.rows.map((r) => ({ tenantId: r.tenant_id, endpointId: r.endpoint_id, inProgress: Number(r.in_progress), deadLettered: Number(r.dead_lettered) })),
  };
}

/**
 * A window's attempt and delivery figures, as an endpoint's and a tenant's stats both show them:
 * from one row of attempt counts and latency percentiles, and the deliveries counted by status.
 */
export function windowFigures(
  w: { total: unknown; succeeded: unknown; pct: (number | null)[] | null },
  deliveriesByStatus: { status: string; n: unknown }[],
) {
  const total = Number(w.total);
  const succeeded = Number(w.succeeded);
  const pct = w.pct ?? [null, null, null];
  const byStatus: Record<string, number> = Object.fromEntries(deliveriesByStatus.map((r) => [r.status, Number(r.n)]));
  const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  return {
    attempts: { total, succeeded, failed: total - succeeded },
    successRate: total > 0 ? succeeded / total : null,
    latencyMs: { p50: round(pct[0]), p95: round(pct[1]), p99: round(pct[2]) },
    deliveries: {
      pending: byStatus.pending ?? 0,
      delivering: byStatus.delivering ?? 0,
      delivered: byStatus.delivered ?? 0,
      deadLettered: byStatus.dead_lettered ?? 0,
      dropped: byStatus.dropped ?? 0,
    },
  };
}
