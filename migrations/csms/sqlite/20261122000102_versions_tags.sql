-- Version numbers are reserved before a value is sealed (the number is part
-- of the sealing AAD), from a per-secret counter: never reused.
ALTER TABLE secrets ADD COLUMN next_version INTEGER NOT NULL DEFAULT 2;

-- The state a secret returns to when its scheduled deletion is cancelled.
ALTER TABLE secrets ADD COLUMN state_before_delete TEXT;

CREATE INDEX secrets_due_idx ON secrets (state, scheduled_delete_ms);

-- User tags: one value per key and secret.
CREATE TABLE secret_tags (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (secret_id, tag_key)
);
