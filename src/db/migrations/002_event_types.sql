-- Event types: the catalogue of what producers send, with versioned JSON Schemas for `data`.

CREATE TABLE event_types (
  name          text PRIMARY KEY,
  description   text NOT NULL DEFAULT '',
  deprecated    boolean NOT NULL DEFAULT false,
  -- When it was last marked deprecated; sent as the RFC 9745 Deprecation header. NULL when not.
  deprecated_at timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Immutable once written: a changed schema is a new version (1, 2, …). `id` is a ULID that no
-- other database shares, so a process may cache compiled validators by it without ever
-- invalidating them.
CREATE TABLE event_type_versions (
  id          text PRIMARY KEY,
  name        text NOT NULL REFERENCES event_types(name) ON DELETE CASCADE,
  version     integer NOT NULL CHECK (version >= 1),
  schema      jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);
