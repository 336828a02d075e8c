-- Per-endpoint signing scheme (Standard Webhooks): 'hmac' signs v1 with a shared whsec_ secret,
-- 'ed25519' signs v1a with a whsk_ private key whose whpk_ public key the receiver holds.
--
-- The scheme new secrets are made for. Each stored secret carries its own scheme in its prefix
-- (whsec_ / whsk_, sealed like any secret in endpoint_secrets), so during a rotation from one
-- scheme to the other the old and the new secret both sign, each in its own version.
ALTER TABLE endpoints ADD COLUMN signing text NOT NULL DEFAULT 'hmac'
  CHECK (signing IN ('hmac', 'ed25519'));
