-- The alias API (kms-api.md §3.8), apart from a key's own key_alias: an
-- alias names one key of the project at a time and can be moved to
-- another; a key may have several. Deleting a key deletes its aliases.
CREATE TABLE key_aliases (
    project_id TEXT NOT NULL,
    alias      TEXT NOT NULL,
    key_id     TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    create_ms  BIGINT NOT NULL,
    update_ms  BIGINT NOT NULL,
    PRIMARY KEY (project_id, alias)
);

CREATE INDEX key_aliases_key_idx ON key_aliases (key_id, alias);
