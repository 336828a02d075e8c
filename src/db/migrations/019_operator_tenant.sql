-- The operator tenant (src/db/tenants.ts, OPERATOR_TENANT): where the cross-tenant feed of
-- operational events lands, each tenant getting its own copy in its own tenant. Its id starts
-- with `_`, which no tenant created through the API can, so it cannot be taken or shadowed.
INSERT INTO tenants (id, name) VALUES ('_operator', 'Operator feed (every tenant''s hookline.* events)')
  ON CONFLICT (id) DO NOTHING;

-- Only the admin key acts on it; a minted key bound to it would be a way around that. The API
-- refuses one (422 naming tenantId); this keeps a hand-made row from doing it either.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_not_operator CHECK (tenant_id <> '_operator');
