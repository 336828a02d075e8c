-- Deliveries paused because their `hookline listen` session had no listener (activities/
-- listen-transport.ts): the worker adds the workflow in the same statement that finds the session
-- offline (under a share lock on the session row, so a listener attaching at that moment either
-- is seen or sees this row); the API holding the new stream takes the rows and signals each
-- workflow (gateOpen), which retries at once instead of at its fallback timer. A row whose
-- signal is lost costs only that timer.
CREATE TABLE listen_waiters (
  session_id  text NOT NULL REFERENCES listen_sessions(id) ON DELETE CASCADE,
  workflow_id text NOT NULL,
  PRIMARY KEY (session_id, workflow_id)
);
