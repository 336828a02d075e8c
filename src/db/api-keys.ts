// API keys minted by the admin: scoped to one tenant (or all) and to publish / read / manage.
// The key itself is shown once, at creation; only its SHA-256 is stored. A salted slow hash
// (bcrypt, argon2) protects low-entropy passwords from guessing; these keys are 256 random bits,
// which no one can guess or brute-force from the digest, so the fast hash loses nothing and keeps
// every authenticated request to one unique-index probe.
import { createHash, randomBytes } from 'node:crypto';
import { newApiKeyId } from '../ids';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

export const KEY_SCOPES = ['publish', 'read', 'manage'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/** What a minted key looks like: `hk_` + 43 base64url characters (32 random bytes). */
export const API_KEY_PATTERN = /^hk_[A-Za-z0-9_-]{43}$/;
const KEY_PREFIX_CHARS = 10;

export interface ApiKeyRow {
  id: string;
  name: string;
  /** Null: every tenant. */
  tenantId: string | null;
  scopes: KeyScope[];
  keyPrefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const COLUMNS = 'id, name, tenant_id, scopes, key_prefix, created_at, last_used_at, revoked_at';
const toRow = (r: any): ApiKeyRow => ({
  id: r.id, name: r.name, tenantId: r.tenant_id, scopes: r.scopes, keyPrefix: r.key_prefix,
  createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
});

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** Mints a key; the returned `key` is the only copy that will ever exist. */
export async function createApiKey(
  db: Queryable,
  k: { name: string; tenantId: string | null; scopes: KeyScope[] },
): Promise<{ row: ApiKeyRow; key: string }> {
  const key = `hk_${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query(
    `INSERT INTO api_keys (id, name, tenant_id, scopes, key_hash, key_prefix) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [newApiKeyId(), k.name, k.tenantId, k.scopes, hashApiKey(key), key.slice(0, KEY_PREFIX_CHARS)],
  );
  return { row: toRow(rows[0]), key };
}

/** The live (unrevoked) key with this value, or null. */
export async function findApiKey(db: Queryable, key: string): Promise<ApiKeyRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, [hashApiKey(key)]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Newest first (ids are ULIDs); revoked keys stay listed with their revocation time. */
export async function listApiKeys(db: Queryable, limit: number, before?: string, tenantId?: string): Promise<ApiKeyRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR id < $1) AND ($3::text IS NULL OR tenant_id = $3)
     ORDER BY id DESC LIMIT $2`,
    [before ?? null, limit, tenantId ?? null],
  );
  return rows.map(toRow);
}

export async function getApiKey(db: Queryable, id: string): Promise<ApiKeyRow | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
  return rows[0] ? toRow(rows[0]) : null;
}

/** Revokes at once (the next request with it is a 401); revoking twice keeps the first time. */
export async function revokeApiKey(db: Queryable, id: string): Promise<ApiKeyRow | null> {
  const { rows } = await db.query(
    `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0] ? toRow(rows[0]) : null;
}

/** A deleted tenant's keys: every one not yet revoked is revoked now (src/db/tenants.ts). */
export async function revokeTenantKeys(db: Queryable, tenantId: string): Promise<void> {
  await db.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL', [tenantId]);
}

/**
 * Records a use, at most once per `everyMs` per key across every API replica: the WHERE makes a
 * second writer within the interval a no-op, and the caller only calls when the value it read is
 * older than that, so a busy key costs one write a minute, not one per request.
 */
export async function touchApiKey(db: Queryable, id: string, everyMs: number): Promise<void> {
  await db.query(
    `UPDATE api_keys SET last_used_at = now()
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2::double precision / 1000))`,
    [id, everyMs],
  );
}
