-- The storm cap of operational webhooks (src/ops-events.ts): per endpoint and per hookline.* type,
-- how many events the current window has seen and how many were held back since the last one
-- sent. One small row per (endpoint, type), rewritten in place; counted in Postgres so every
-- worker process shares one cap. No foreign key: a row outliving its endpoint is a few bytes.
CREATE TABLE ops_event_windows (
  endpoint_id  text NOT NULL,
  type         text NOT NULL,
  window_start timestamptz NOT NULL,
  seen         integer NOT NULL,
  suppressed   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (endpoint_id, type)
);
