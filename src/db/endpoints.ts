// Endpoint rows and their secrets. Secrets are stored sealed (AES-256-GCM, src/at-rest.ts) and
// opened only where they are used: activeSecrets(), which the worker's activity signs with.
// A secret's prefix says how it signs (whsec_ HMAC, whsk_ ed25519, src/signing.ts); an endpoint's
// `signing` says which kind a rotation issues next.
import { currentKeyring, openSecret, sealSecret } from '../at-rest';
import { schemeOf, type SigningScheme } from '../signing';
import type { Pool, PoolClient } from './pool';
import type { RetryOverrides } from '../retry';

type Queryable = Pool | PoolClient;

export interface EndpointLimits {
  maxInFlight?: number;
  /** Requests per second. */
  rateLimit?: number;
  connectTimeoutMs?: number;
  responseTimeoutMs?: number;
}

export interface EndpointRow {
  id: string;
  tenantId: string;
  url: string;
  description: string;
  eventTypes: string[] | null;
  channels: string[] | null;
  retry: RetryOverrides;
  metadata: Record<string, string>;
  disabled: boolean;
  disabledReason: string | null;
  signing: SigningScheme;
  /** Isolation settings (src/db/gate.ts); absent keys take the worker's defaults. */
  limits: EndpointLimits;
  createdAt: Date;
  updatedAt: Date;
}

export const COLUMNS = `id, tenant_id, url, description, event_types, channels, retry, metadata, disabled, disabled_reason, signing, limits, created_at, updated_at`;

export function toRow(r: any): EndpointRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types,
    channels: r.channels,
    retry: r.retry,
    metadata: r.metadata,
    disabled: r.disabled,
    disabledReason: r.disabled_reason,
    signing: r.signing,
    limits: r.limits ?? {},
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type NewEndpoint = Pick<EndpointRow, 'id' | 'tenantId' | 'url' | 'description' | 'eventTypes' | 'channels' | 'retry' | 'metadata' | 'disabled'> & {
  limits?: EndpointLimits;
  /** `whsec_…` or `whsk_…`; the endpoint's signing scheme follows from it. */
  secret: string;
};

export async function insertEndpoint(db: PoolClient, e: NewEndpoint): Promise<EndpointRow> {
  const { rows } = await db.query(
    `INSERT INTO endpoints (id, url, description, event_types, channels, retry, metadata, disabled, signing, tenant_id, limits)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${COLUMNS}`,
    [e.id, e.url, e.description, e.eventTypes, e.channels, e.retry, e.metadata, e.disabled, schemeOf(e.secret), e.tenantId, e.limits ?? {}],
  );
  await db.query('INSERT INTO endpoint_secrets (endpoint_id, secret) VALUES ($1, $2)', [e.id, sealSecret(e.id, e.secret)]);
  return toRow(rows[0]);
}

/**
 * How many endpoints the tenant has, counted under a per-tenant transaction lock so two creates
 * at once cannot both pass HOOKLINE_MAX_ENDPOINTS_PER_TENANT. Call inside the create's transaction.
 */
export async function countEndpointsForCreate(db: PoolClient, tenantId: string): Promise<number> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('hookline.endpoints:' || $1))`, [tenantId]);
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM endpoints WHERE tenant_id = $1', [tenantId]);
  return rows[0].n;
}

/** With `tenantId` (every API route passes it), another tenant's endpoint reads as absent. */
export async function getEndpoint(db: Queryable, id: string, tenantId?: string): Promise<EndpointRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM endpoints WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`, [id, tenantId ?? null]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Newest first; `before` is the id cursor of the previous page's last row. */
export async function listEndpoints(db: Queryable, tenantId: string, limit: number, before?: string): Promise<EndpointRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM endpoints WHERE tenant_id = $3 AND ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2`,
    [before ?? null, limit, tenantId],
  );
  return rows.map(toRow);
}

/** Every enabled endpoint, or those of `tenantIds` (the relay asks for the tenants of its batch). */
export async function listActiveEndpoints(db: Queryable, tenantIds?: string[]): Promise<EndpointRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM endpoints WHERE NOT disabled AND ($1::text[] IS NULL OR tenant_id = ANY($1)) ORDER BY id`,
    [tenantIds ?? null],
  );
  return rows.map(toRow);
}

/** With `tenantId`, ids of another tenant are left out (a replay never crosses tenants). */
export async function getEndpointsByIds(db: Queryable, ids: string[], tenantId?: string): Promise<EndpointRow[]> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM endpoints WHERE id = ANY($1) AND ($2::text IS NULL OR tenant_id = $2) ORDER BY id`, [ids, tenantId ?? null]);
  return rows.map(toRow);
}

export type EndpointPatch = Partial<Omit<NewEndpoint, 'id' | 'secret'>> & { disabledReason?: string | null };

/** With `tenantId`, another tenant's endpoint is not found (and not changed). */
export async function updateEndpoint(db: Queryable, id: string, patch: EndpointPatch, tenantId?: string): Promise<EndpointRow | null> {
  const sets: string[] = [];
  const values: unknown[] = [id, tenantId ?? null];
  const column: Record<string, string> = {
    url: 'url', description: 'description', eventTypes: 'event_types', channels: 'channels',
    retry: 'retry', metadata: 'metadata', disabled: 'disabled', disabledReason: 'disabled_reason',
    limits: 'limits',
  };
  for (const [key, col] of Object.entries(column)) {
    const value = (patch as Record<string, unknown>)[key];
    if (value !== undefined) {
      values.push(value);
      sets.push(`${col} = $${values.length}`);
    }
  }
  // Re-enabling clears the reason it was disabled for.
  if (patch.disabled === false && patch.disabledReason === undefined) sets.push('disabled_reason = NULL');
  sets.push('updated_at = now()');
  const { rows } = await db.query(`UPDATE endpoints SET ${sets.join(', ')} WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING ${COLUMNS}`, values);
  return rows[0] ? toRow(rows[0]) : null;
}

export async function deleteEndpoint(db: Queryable, id: string, tenantId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM endpoints WHERE id = $1 AND tenant_id = $2', [id, tenantId]);
  return (rowCount ?? 0) > 0;
}

/** A deleted tenant's endpoints, all at once (their secrets and gates go by ON DELETE CASCADE). */
export async function deleteTenantEndpoints(db: Queryable, tenantId: string): Promise<void> {
  await db.query('DELETE FROM endpoints WHERE tenant_id = $1', [tenantId]);
}

/**
 * The endpoints of `hookline listen` sessions seen last more than `graceMs` ago (src/listen/
 * sessions.ts sweeps them), never one a stream held within `connectedStaleMs`; their session rows
 * go with them (ON DELETE CASCADE). One statement, so a listener reattaching meanwhile is either
 * seen or too late. Returns the endpoint ids.
 */
export async function deleteGoneListenEndpoints(db: Queryable, graceMs: number, connectedStaleMs: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `DELETE FROM endpoints e USING listen_sessions s
     WHERE s.endpoint_id = e.id AND s.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
       -- never one a live stream holds, however short the grace
       AND (s.holder IS NULL OR s.last_seen_at < now() - make_interval(secs => $2::double precision / 1000))
     RETURNING e.id`,
    [graceMs, connectedStaleMs],
  );
  return rows.map((r) => r.id);
}

/** Secrets that sign right now, newest first. */
export async function activeSecrets(db: Queryable, endpointId: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT secret FROM endpoint_secrets
     WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())
     ORDER BY id DESC`,
    [endpointId],
  );
  return rows.map((r) => openSecret(endpointId, r.secret));
}

/**
 * Adds a new secret and schedules every unexpired older one to expire after `expireOldAfterMs`
 * (0 = at once). During the overlap deliveries carry one signature per active secret. A secret
 * of the other scheme switches the endpoint to it: old v1 and new v1a (or the reverse) overlap.
 */
export async function rotateSecret(db: PoolClient, endpointId: string, secret: string, expireOldAfterMs: number): Promise<void> {
  await db.query('UPDATE endpoints SET signing = $2, updated_at = now() WHERE id = $1 AND signing <> $2', [endpointId, schemeOf(secret)]);
  await db.query(
    `UPDATE endpoint_secrets SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + make_interval(secs => $2::double precision / 1000))
     WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())`,
    [endpointId, expireOldAfterMs],
  );
  await db.query('INSERT INTO endpoint_secrets (endpoint_id, secret) VALUES ($1, $2)', [endpointId, sealSecret(endpointId, secret)]);
}

export async function countSecrets(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM endpoint_secrets');
  return rows[0].n;
}

/**
 * Seals every secret that is plaintext or sealed with an older key with the newest key
 * (a role's start, src/at-rest-start.ts). Each row is swapped only if unchanged since it was
 * read, so roles starting together cannot clash. Throws when a secret was sealed with a key the
 * keyring lacks. Returns how many rows were sealed.
 */
export async function sealStoredSecrets(db: Queryable): Promise<number> {
  const keyring = currentKeyring();
  const { rows } = await db.query<{ id: string; endpoint_id: string; secret: string }>(
    'SELECT id, endpoint_id, secret FROM endpoint_secrets WHERE NOT starts_with(secret, $1) ORDER BY id',
    [`enc:v1:${keyring.primaryId}:`],
  );
  let sealed = 0;
  for (const r of rows) {
    if (!keyring.needsReseal(r.secret)) continue;
    let plain: string;
    try {
      plain = openSecret(r.endpoint_id, r.secret);
    } catch (err) {
      throw new Error(`cannot read the secret of endpoint ${r.endpoint_id}: ${(err as Error).message}`);
    }
    const { rowCount } = await db.query('UPDATE endpoint_secrets SET secret = $3 WHERE id = $1 AND secret = $2', [
      r.id, r.secret, sealSecret(r.endpoint_id, plain),
    ]);
    sealed += rowCount ?? 0;
  }
  return sealed;
}

/** Deletes secrets that stopped signing more than `days` ago (retention, src/relay/retention.ts). */
export async function purgeExpiredSecrets(db: Queryable, days: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM endpoint_secrets WHERE expires_at < now() - make_interval(days => $1)`,
    [days],
  );
  return rowCount ?? 0;
}
