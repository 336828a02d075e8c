-- Each delivery row holds the plan the relay made for it (host, retry snapshot, response
-- timeout): a large fan-out's children load their endpoints from these rows instead of the
-- workflow's start input, and still deliver "as planned" even if the endpoint changed since.
-- NULL for rows written before this migration and for rows a replay added.
ALTER TABLE deliveries ADD COLUMN plan jsonb;
