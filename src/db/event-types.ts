// Event types and their schema versions (migration 002). Versions are immutable: a new schema is
// a new row with the next number, never an update.
import type { ClientBase } from 'pg';
import { newEventTypeVersionId } from '../ids';
import { isOperationalType, OPERATIONAL_EVENT_CATALOGUE } from '../ops-events';
import type { Pool, PoolClient } from './pool';

/** ClientBase, not PoolClient: the producer library passes its own pg.Client. */
type Queryable = Pool | ClientBase;

export interface EventTypeVersionRow {
  version: number;
  schema: unknown;
  createdAt: Date;
}

export interface EventTypeRow {
  name: string;
  description: string;
  deprecated: boolean;
  deprecatedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** Oldest first. Empty when the type was registered without a schema. */
  versions: EventTypeVersionRow[];
}

const COLUMNS = 'name, description, deprecated, deprecated_at, created_at, updated_at';

async function withVersions(db: Queryable, rows: any[]): Promise<EventTypeRow[]> {
  if (rows.length === 0) return [];
  const { rows: versions } = await db.query(
    'SELECT name, version, schema, created_at FROM event_type_versions WHERE name = ANY($1) ORDER BY name, version',
    [rows.map((r) => r.name)],
  );
  return rows.map((r) => ({
    name: r.name,
    description: r.description,
    deprecated: r.deprecated,
    deprecatedAt: r.deprecated_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    versions: versions
      .filter((v) => v.name === r.name)
      .map((v) => ({ version: v.version, schema: v.schema, createdAt: v.created_at })),
  }));
}

async function addVersion(db: PoolClient, name: string, version: number, schema: unknown): Promise<void> {
  await db.query('INSERT INTO event_type_versions (id, name, version, schema) VALUES ($1, $2, $3, $4)', [
    newEventTypeVersionId(), name, version, JSON.stringify(schema),
  ]);
}

export interface NewEventType {
  name: string;
  description: string;
  deprecated: boolean;
  /** Becomes version 1 when given. */
  schema?: unknown;
}

/** Registers a type (and its version 1). Returns null when the name is taken. */
export async function insertEventType(db: PoolClient, t: NewEventType): Promise<EventTypeRow | null> {
  const { rows } = await db.query(
    `INSERT INTO event_types (name, description, deprecated, deprecated_at)
     VALUES ($1, $2, $3, CASE WHEN $3 THEN now() END)
     ON CONFLICT (name) DO NOTHING RETURNING name`,
    [t.name, t.description, t.deprecated],
  );
  if (!rows[0]) return null;
  if (t.schema !== undefined) await addVersion(db, t.name, 1, t.schema);
  return getEventType(db, t.name);
}

// Hookline's own hookline.* types (src/ops-events.ts): listed with the registered ones so the
// API and console show their schemas, but defined in code, never stored, never changed.
const BUILTIN_SINCE = new Date('2026-11-29T00:00:00.000Z');
const builtinEventTypes: EventTypeRow[] = Object.entries(OPERATIONAL_EVENT_CATALOGUE)
  .map(([name, t]) => ({
    name, description: t.description, deprecated: false, deprecatedAt: null, createdAt: BUILTIN_SINCE, updatedAt: BUILTIN_SINCE,
    versions: [{ version: 1, schema: t.schema, createdAt: BUILTIN_SINCE }],
  }))
  .sort((a, b) => (a.name < b.name ? -1 : 1));

export async function getEventType(db: Queryable, name: string): Promise<EventTypeRow | null> {
  if (isOperationalType(name)) return builtinEventTypes.find((t) => t.name === name) ?? null;
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM event_types WHERE name = $1`, [name]);
  return (await withVersions(db, rows))[0] ?? null;
}

/** By name, A→Z, the built-in hookline.* types among them; `after` is the previous page's last name. */
export async function listEventTypes(db: Queryable, limit: number, after?: string): Promise<EventTypeRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM event_types WHERE ($1::text IS NULL OR name > $1 COLLATE "C") AND NOT starts_with(name, 'hookline.')
     ORDER BY name COLLATE "C" LIMIT $2`,
    [after ?? null, limit],
  );
  const builtins = builtinEventTypes.filter((t) => after === undefined || t.name > after);
  // Byte order on both sides (COLLATE "C" above), so the merge and the cursor agree in any locale.
  return [...(await withVersions(db, rows)), ...builtins].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).slice(0, limit);
}

export interface EventTypePatch {
  description?: string;
  deprecated?: boolean;
  /** Added as the next version — unless it equals the latest one, so a retried PATCH adds nothing. */
  schema?: unknown;
}

/** Returns null when the type does not exist. Call inside a transaction: it locks the type row. */
export async function updateEventType(db: PoolClient, name: string, patch: EventTypePatch): Promise<EventTypeRow | null> {
  const { rows } = await db.query('SELECT name FROM event_types WHERE name = $1 FOR UPDATE', [name]);
  if (!rows[0]) return null;
  if (patch.schema !== undefined) {
    // jsonb equality ignores key order and whitespace.
    const { rows: latest } = await db.query(
      `SELECT version, schema = $2::jsonb AS same FROM event_type_versions
       WHERE name = $1 ORDER BY version DESC LIMIT 1`,
      [name, JSON.stringify(patch.schema)],
    );
    if (!latest[0]?.same) await addVersion(db, name, (latest[0]?.version ?? 0) + 1, patch.schema);
  }
  await db.query(
    `UPDATE event_types SET
       description = COALESCE($2, description),
       deprecated_at = CASE WHEN $3::boolean IS NULL THEN deprecated_at
                            WHEN $3 THEN COALESCE(deprecated_at, now()) END,
       deprecated = COALESCE($3, deprecated),
       updated_at = now()
     WHERE name = $1`,
    [name, patch.description ?? null, patch.deprecated ?? null],
  );
  return getEventType(db, name);
}

/** What an incoming event of `name` must satisfy; see src/contracts.ts. */
export type EventContract =
  | { registered: false }
  | {
      registered: true;
      deprecatedAt: Date | null;
      /** Newest version number; null when the type has no schema. */
      latestVersion: number | null;
      /** The requested (or, when none was asked for, the latest) version; null when it does not exist. */
      version: { id: string; number: number } | null;
    };

/** One round trip, without the schema itself (callers cache compiled schemas by version id). */
export async function lookupEventContract(db: Queryable, name: string, version: number | null): Promise<EventContract> {
  const { rows } = await db.query(
    `SELECT t.deprecated, t.deprecated_at, latest.version AS latest, v.id AS version_id, v.version
     FROM event_types t
     LEFT JOIN LATERAL (SELECT max(version) AS version FROM event_type_versions WHERE name = t.name) latest ON true
     LEFT JOIN event_type_versions v ON v.name = t.name AND v.version = COALESCE($2, latest.version)
     WHERE t.name = $1`,
    [name, version],
  );
  const r = rows[0];
  if (!r) return { registered: false };
  return {
    registered: true,
    deprecatedAt: r.deprecated ? (r.deprecated_at ?? new Date(0)) : null,
    latestVersion: r.latest,
    version: r.version_id ? { id: r.version_id, number: r.version } : null,
  };
}

export async function getVersionSchema(db: Queryable, versionId: string): Promise<unknown> {
  const { rows } = await db.query('SELECT schema FROM event_type_versions WHERE id = $1', [versionId]);
  if (!rows[0]) throw new Error(`event type version ${versionId} does not exist`);
  return rows[0].schema;
}

// ---------------------------------------------------------------------------------------------
// Contract cache for the submit path: the lookup above is a round trip per submitted event, for
// an answer that changes only when a type is registered, deprecated or given a new version.
//
// Bounded staleness: a registration or change made through this process invalidates every entry
// at once (the API calls invalidateEventContracts() after its transaction commits); one made by
// another process (another API replica) is seen here within CONTRACT_CACHE_TTL_MS. Until then
// this process may still accept an unregistered type, validate against the previous latest
// version, or omit a fresh deprecation warning — for at most that long.
export const CONTRACT_CACHE_TTL_MS = 2_000;
/** Distinct (type, version) pairs remembered per pool; oldest dropped first. */
const CONTRACT_CACHE_SIZE = 1_000;

interface CachedContract {
  expiresAt: number;
  generation: number;
  value: Promise<EventContract>;
}

// Per pool (one per database), so two databases in one process never share answers.
const contractCaches = new WeakMap<Pool, Map<string, CachedContract>>();
// Bumped by every change made in this process; entries from an older generation are misses,
// and a lookup that raced a change does not store its (possibly stale) answer.
let contractGeneration = 0;

export function invalidateEventContracts(): void {
  contractGeneration++;
}

/**
 * lookupEventContract through `pool`'s cache; concurrent misses for one key share one query. A
 * miss queries through `via` — the caller's transaction client when it holds one, so a request
 * never waits for a second pool connection while holding the first.
 */
export function lookupEventContractCached(pool: Pool, name: string, version: number | null, via: Queryable = pool): Promise<EventContract> {
  let cache = contractCaches.get(pool);
  if (!cache) contractCaches.set(pool, (cache = new Map()));
  const key = `${name}\0${version ?? ''}`;
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && hit.expiresAt > now && hit.generation === contractGeneration) return hit.value;
  const generation = contractGeneration;
  const value = lookupEventContract(via, name, version);
  if (cache.size >= CONTRACT_CACHE_SIZE && !cache.has(key)) cache.delete(cache.keys().next().value!);
  cache.set(key, { expiresAt: now + CONTRACT_CACHE_TTL_MS, generation, value });
  // A failed lookup (database down) is not remembered.
  value.catch(() => cache.get(key)?.value === value && cache.delete(key));
  return value;
}
