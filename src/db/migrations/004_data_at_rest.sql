-- Data at rest: sealed event payloads and the index the retention job reads.
--
-- Endpoint secrets need no schema change: endpoint_secrets.secret holds either a sealed value
-- ('enc:v1:<keyId>:…', src/crypto.ts) or, for rows written before HOOKLINE_ENCRYPTION_KEY was
-- set, the plaintext 'whsec_…'. SQL cannot encrypt (it has no key), so every role seals the
-- plaintext rows at start once a key is configured (src/at-rest-start.ts).

-- With HOOKLINE_ENCRYPT_PAYLOADS=true an event's payload is stored sealed in data_encrypted and
-- data is NULL; otherwise data holds it as before. Exactly one of the two is set. NOT VALID: every
-- existing row has data, so the check need not scan a large table while holding its lock.
ALTER TABLE events ALTER COLUMN data DROP NOT NULL;
ALTER TABLE events ADD COLUMN data_encrypted text;
ALTER TABLE events ADD CONSTRAINT events_data_xor_encrypted
  CHECK ((data IS NULL) <> (data_encrypted IS NULL)) NOT VALID;

-- Retention (src/relay/retention.ts) deletes the oldest finished events first.
CREATE INDEX events_created ON events (created_at);
