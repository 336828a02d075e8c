// portal_session_revocations and portal_tenant_revocations: the portal sessions an operator
// ended before they expired. Tokens stay stateless JWTs (src/api/portal-token.ts); these rows are
// the exceptions access.ts checks on every portal request. Only this module writes them.
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** Ends one session of the tenant; its row lives until the token would have expired anyway. */
export async function revokePortalSession(db: Queryable, tenantId: string, sessionId: string, expiresAt: Date): Promise<void> {
  // Expired rows can refuse nothing any more: swept here, where the table grows.
  await db.query('DELETE FROM portal_session_revocations WHERE expires_at < now()');
  await db.query(
    `INSERT INTO portal_session_revocations (session_id, tenant_id, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id, session_id) DO NOTHING`,
    [sessionId, tenantId, expiresAt],
  );
}

/** Ends every session of the tenant issued up to now; sessions minted afterwards work. */
export async function revokeTenantPortalSessions(db: Queryable, tenantId: string): Promise<Date> {
  const { rows } = await db.query<{ revoked_at: Date }>(
    `INSERT INTO portal_tenant_revocations (tenant_id, revoked_at) VALUES ($1, clock_timestamp())
     ON CONFLICT (tenant_id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at RETURNING revoked_at`,
    [tenantId],
  );
  return rows[0].revoked_at;
}

/** Whether a verified session was revoked, by its id or by its tenant's "revoke all". */
export async function isPortalSessionRevoked(db: Queryable, s: { sessionId: string; tenantId: string; issuedAt: Date }): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM portal_session_revocations WHERE tenant_id = $2 AND session_id = $1
     UNION ALL
     SELECT 1 FROM portal_tenant_revocations WHERE tenant_id = $2 AND revoked_at >= $3
     LIMIT 1`,
    [s.sessionId, s.tenantId, s.issuedAt],
  );
  return rows.length > 0;
}
