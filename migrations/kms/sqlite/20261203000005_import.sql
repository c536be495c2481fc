-- Imported key material (kms-api.md §3.4): a keyed digest (HMAC under a
-- key derived from the root key) of the material imported into an
-- external key. It outlives the material, so that only the same material
-- can be imported again; it reveals nothing of the material.
ALTER TABLE keys ADD COLUMN import_digest BLOB;

-- The background task's question, "whose imported material expired".
CREATE INDEX keys_import_expiry_idx ON keys (expiration_ms) WHERE expiration_ms IS NOT NULL;
