-- The per-row NOTIFY trigger made every event insert take Postgres's database-wide NOTIFY lock at
-- commit, holding it across the commit's WAL flush: concurrent submissions committed one at a
-- time. Writers now notify after their own commit, coalesced (src/db/outbox-notify.ts); the
-- relay's poll (HOOKLINE_RELAY_POLL_MS) covers a writer that died between commit and notify.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
