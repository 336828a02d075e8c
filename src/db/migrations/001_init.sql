-- The core tables: endpoints and their secrets, events with their outbox, deliveries and attempts.

CREATE TABLE endpoints (
  id              text PRIMARY KEY,
  url             text NOT NULL,
  description     text NOT NULL DEFAULT '',
  -- NULL: every event type. Otherwise exact names or prefix patterns such as 'invoice.*'.
  event_types     text[],
  -- NULL: every channel. Otherwise the event must carry one of these channels.
  channels        text[],
  -- Per-endpoint overrides of the retry policy, in milliseconds (see src/retry.ts).
  retry           jsonb NOT NULL DEFAULT '{}'::jsonb,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  disabled        boolean NOT NULL DEFAULT false,
  disabled_reason text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Several rows per endpoint during a rotation; a secret signs while expires_at is NULL or future.
CREATE TABLE endpoint_secrets (
  id          bigserial PRIMARY KEY,
  endpoint_id text NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz
);
CREATE INDEX endpoint_secrets_endpoint ON endpoint_secrets (endpoint_id);

CREATE TABLE events (
  id              text PRIMARY KEY,
  type            text NOT NULL,
  version         integer,
  channels        text[],
  data            jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_type_created ON events (type, created_at DESC);

-- Written in the same transaction as the event; the relay deletes a row once its workflow started.
CREATE TABLE outbox (
  event_id    text PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  relay_attempts integer NOT NULL DEFAULT 0,
  last_error  text,
  available_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_available ON outbox (available_at);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hookline_outbox', NEW.event_id);
  RETURN NEW;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_notify();

-- One row per (event, endpoint): the delivery's current state. No foreign key to endpoints so
-- history outlives a deleted endpoint.
CREATE TABLE deliveries (
  event_id        text NOT NULL REFERENCES events(id) ON DELETE CASCADE,
  endpoint_id     text NOT NULL,
  event_type      text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'dead_lettered', 'dropped')),
  attempts        integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error      text,
  reason          text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  dead_lettered_at timestamptz,
  PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX deliveries_status_updated ON deliveries (status, updated_at DESC);
CREATE INDEX deliveries_endpoint_created ON deliveries (endpoint_id, created_at DESC);
CREATE INDEX deliveries_created ON deliveries (created_at DESC, event_id, endpoint_id);

CREATE TABLE attempts (
  id           bigserial PRIMARY KEY,
  event_id     text NOT NULL,
  endpoint_id  text NOT NULL,
  attempt      integer NOT NULL,
  started_at   timestamptz NOT NULL,
  latency_ms   integer NOT NULL,
  status_code  integer,
  error        text,
  outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
  response_body text
);
CREATE INDEX attempts_delivery ON attempts (event_id, endpoint_id, id);
CREATE INDEX attempts_endpoint_started ON attempts (endpoint_id, started_at DESC);

-- Remembered Idempotency-Keys: the request's hash and the event it created.
CREATE TABLE idempotency_keys (
  key          text PRIMARY KEY,
  request_hash text NOT NULL,
  event_id     text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
