-- Test-event rate windows (src/db/test-event-rate.ts): one row per endpoint, the start of its
-- current fixed window and how many test events it has taken, so every API process counts
-- against the same limit.
CREATE TABLE test_event_windows (
  endpoint_id  text PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
  window_start timestamptz NOT NULL,
  count        int NOT NULL
);

-- Portal-session revocations (src/db/portal-revocations.ts). Portal tokens stay stateless JWTs;
-- these are the exceptions every verify checks. One row per revoked session (its jti), kept
-- until the token would have expired anyway; one row per tenant for "revoke all", refusing every
-- token issued at or before revoked_at.
-- Keyed by tenant too: a session id revoked through another tenant's routes refuses nothing.
CREATE TABLE portal_session_revocations (
  tenant_id  text NOT NULL,
  session_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, session_id)
);
CREATE TABLE portal_tenant_revocations (
  tenant_id  text PRIMARY KEY,
  revoked_at timestamptz NOT NULL
);
