// Tenant rows: the sender's customers. Endpoints, events, deliveries and attempts carry a
// tenant_id (migration 013); this module owns the tenants table itself, its soft delete (which
// has the endpoints and API-key modules remove what the tenant held), and the per-tenant
// aggregates behind GET /v1/tenants/:tenantId/stats.
import { revokeTenantKeys } from './api-keys';
import { deleteTenantEndpoints } from './endpoints';
import { windowFigures } from './stats';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** The tenant every route without a tenant in its path acts on; existing rows moved here. */
export const DEFAULT_TENANT = 'default';

/**
 * The operator feed: a copy of every tenant's operational (hookline.*) events, reasons unredacted
 * (src/ops-events.ts). Reserved: the leading `_` is outside TENANT_ID_PATTERN and
 * TENANT_PATH_PATTERN, so no POST /v1/tenants, producer or path check can name it; access.ts
 * opens it to the admin key alone, and no API key or portal session can be bound to it.
 */
export const OPERATOR_TENANT = '_operator';

/**
 * A producer-chosen tenant id (its own customer id, like Svix's `uid`): safe in a URL path, a
 * Prometheus label and a Temporal search attribute as it is, and never mistaken for a generated
 * `tn_` id.
 */
export const TENANT_ID_PATTERN = /^(?!tn_)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** What a path may carry: a chosen id or a generated one (anything else is a 404 without a query). */
export const TENANT_PATH_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface TenantRow {
  id: string;
  name: string;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = 'id, name, metadata, created_at, updated_at';
const toRow = (r: any): TenantRow => ({ id: r.id, name: r.name, metadata: r.metadata, createdAt: r.created_at, updatedAt: r.updated_at });

/** Null when the id is taken, by a live tenant or by a deleted one (ids are never reused). */
export async function insertTenant(db: Queryable, t: Pick<TenantRow, 'id' | 'name' | 'metadata'>): Promise<TenantRow | null> {
  const { rows } = await db.query(
    `INSERT INTO tenants (id, name, metadata) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
    [t.id, t.name, t.metadata],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/** A live tenant; a deleted one reads as absent. */
export async function getTenant(db: Queryable, id: string): Promise<TenantRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function tenantExists(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL', [id]);
  return (rowCount ?? 0) > 0;
}

/** By id; `after` is the previous page's last id. */
export async function listTenants(db: Queryable, limit: number, after?: string): Promise<TenantRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM tenants WHERE deleted_at IS NULL AND ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2`,
    [after ?? null, limit],
  );
  return rows.map(toRow);
}

export async function updateTenant(db: Queryable, id: string, patch: Partial<Pick<TenantRow, 'name' | 'metadata'>>): Promise<TenantRow | null> {
  const { rows } = await db.query(
    `UPDATE tenants SET name = COALESCE($2, name), metadata = COALESCE($3, metadata), updated_at = now()
     WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
    [id, patch.name ?? null, patch.metadata ?? null],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/**
 * Deletes a tenant: its endpoints (and their secrets) go at once, so nothing more is delivered to
 * them — a delivery in flight fails as "endpoint deleted" — and its API keys are revoked. Its
 * events, deliveries and attempts stay until the retention deletes them. False when absent.
 */
export async function deleteTenant(db: PoolClient, id: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE tenants SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL', [id]);
  if (!rowCount) return false;
  await deleteTenantEndpoints(db, id);
  await revokeTenantKeys(db, id);
  return true;
}

export interface TenantStats {
  endpoints: { total: number; disabled: number };
  events: number;
  attempts: { total: number; succeeded: number; failed: number };
  successRate: number | null;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  deliveries: { pending: number; delivering: number; delivered: number; deadLettered: number; dropped: number };
  /** Dead letters waiting for a replay now, whenever they were parked. */
  deadLettersOpen: number;
}

/** One tenant's figures since `since`; every query is bounded by a (tenant_id, time) index. */
export async function tenantStats(db: Queryable, tenantId: string, since: Date): Promise<TenantStats> {
  const [endpoints, events, attempts, deliveries, open] = await Promise.all([
    db.query('SELECT count(*) AS total, count(*) FILTER (WHERE disabled) AS disabled FROM endpoints WHERE tenant_id = $1', [tenantId]),
    db.query('SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND created_at >= $2', [tenantId, since]),
    db.query(
      `SELECT count(*) AS total,
              count(*) FILTER (WHERE outcome = 'delivered') AS succeeded,
              percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
                FILTER (WHERE status_code IS NOT NULL) AS pct
       FROM attempts WHERE tenant_id = $1 AND started_at >= $2`,
      [tenantId, since],
    ),
    db.query('SELECT status, count(*) AS n FROM deliveries WHERE tenant_id = $1 AND created_at >= $2 GROUP BY status', [tenantId, since]),
    db.query(`SELECT count(*) AS n FROM deliveries WHERE tenant_id = $1 AND status = 'dead_lettered'`, [tenantId]),
  ]);
  return {
    endpoints: { total: Number(endpoints.rows[0].total), disabled: Number(endpoints.rows[0].disabled) },
    events: Number(events.rows[0].n),
    ...windowFigures(attempts.rows[0], deliveries.rows),
    deadLettersOpen: Number(open.rows[0].n),
  };
}
