-- Tenants (the sender's customers) and the API keys scoped to them.
--
-- Endpoints, events, deliveries and attempts belong to exactly one tenant; event types stay
-- global (the sender's catalogue). Every existing row moves to the `default` tenant, which the
-- routes without a tenant in their path act on. A NOT NULL column with a constant default is a
-- catalogue-only change in Postgres 11+, so no table is rewritten here.

CREATE TABLE tenants (
  -- A producer-chosen id (e.g. its own customer id) or a generated `tn_…`; see src/ids.ts.
  id          text PRIMARY KEY,
  name        text NOT NULL DEFAULT '',
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  -- Set by DELETE: the tenant answers 404 and its endpoints are gone, while its events,
  -- deliveries and attempts follow the retention policy. The row stays so the id is never
  -- handed to a new tenant that would then see the old one's history.
  deleted_at  timestamptz
);
INSERT INTO tenants (id, name) VALUES ('default', 'Default');

ALTER TABLE endpoints ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES tenants(id);
ALTER TABLE events ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
-- Set on a test event (POST …/endpoints/:id/test): it goes to this one endpoint only, whatever
-- the endpoint subscribes to. NULL: the tenant's subscribed endpoints, as every other event.
ALTER TABLE events ADD COLUMN only_endpoint_id text;
-- Copied from the event when the relay plans it (and onto attempts as they are recorded), so
-- listing and stats per tenant never need a join, and outlive a deleted endpoint.
ALTER TABLE deliveries ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE attempts ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';

CREATE INDEX endpoints_tenant ON endpoints (tenant_id, id DESC);
CREATE INDEX events_tenant_created ON events (tenant_id, created_at DESC);
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at DESC, event_id, endpoint_id);
CREATE INDEX attempts_tenant_started ON attempts (tenant_id, started_at DESC);

-- Idempotency-Keys are per tenant with no change here: another tenant's key is stored as
-- "<tenantId> <key>" (src/db/events.ts), which no default-tenant key can spell (keys have no
-- spaces), so processes of the previous release keep working on the same table during a
-- rolling upgrade.

-- Keys minted by the admin (HOOKLINE_API_KEY). Only the SHA-256 of a key is stored: keys are 256
-- random bits, so a fast hash cannot be brute-forced and needs no salt or slow KDF, and the
-- lookup stays one index probe per request (see src/db/api-keys.ts).
CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  -- NULL: every tenant.
  tenant_id    text REFERENCES tenants(id),
  scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['publish', 'read', 'manage']::text[] AND cardinality(scopes) > 0),
  key_hash     text NOT NULL UNIQUE,
  -- The first characters of the key, so a listing can say which key is which.
  key_prefix   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- Written at most once a minute per key (src/api/access.ts), never on every request.
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
