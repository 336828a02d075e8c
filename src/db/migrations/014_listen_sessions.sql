-- `hookline listen` (src/listen/): a CLI connects out to the API and receives an endpoint's
-- deliveries over that connection instead of an outbound POST.
--
-- One row per listen session. The endpoint it made (url `listen://<id>`) goes with it; the
-- session goes when its endpoint is deleted. Written only by the API (src/listen/sessions.ts):
-- `holder` is the id of the API stream that serves it now (NULL: disconnected), `last_seen_at`
-- is refreshed by that API while it holds the stream, so a session whose API died looks gone
-- after a few seconds, and one gone longer than HOOKLINE_LISTEN_GRACE_MS is swept.
CREATE TABLE listen_sessions (
  id            text PRIMARY KEY,
  endpoint_id   text NOT NULL UNIQUE REFERENCES endpoints(id) ON DELETE CASCADE,
  holder        text,
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per attempt in flight over a listen session, alive for one request timeout at most:
-- the worker inserts the request (and NOTIFYs hookline_listen), the API holding the session
-- claims it and sends it to the CLI, writes the CLI's answer (and NOTIFYs
-- hookline_listen_answer), and the worker takes the answer by deleting the row.
CREATE TABLE listen_requests (
  id               bigserial PRIMARY KEY,
  session_id       text NOT NULL REFERENCES listen_sessions(id) ON DELETE CASCADE,
  headers          jsonb NOT NULL,
  body             text NOT NULL,
  -- Sealed like events' data when HOOKLINE_ENCRYPT_PAYLOADS is on (src/listen/requests.ts).
  body_sealed      boolean NOT NULL DEFAULT false,
  deadline         timestamptz NOT NULL,
  claimed_by       text,
  answered_at      timestamptz,
  status           integer,
  response_headers jsonb,
  response_body    bytea,
  response_sealed  boolean NOT NULL DEFAULT false,
  error_code       text,
  error_message    text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX listen_requests_pending ON listen_requests (session_id, id) WHERE claimed_by IS NULL;
CREATE INDEX listen_requests_deadline ON listen_requests (deadline);
