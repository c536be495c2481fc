-- Grants (kms-api.md §3.3): a grantee (a user, or every user of a domain)
-- may use a key for the listed operations from its own project. They are
-- read with the key into every replica's key cache, and a change to them
-- notifies like a change to the key, so a revoke reaches every replica
-- within the same bound as a disable. Deleting a key deletes its grants.
CREATE TABLE key_grants (
    grant_id           TEXT PRIMARY KEY,
    key_id             TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    project_id         TEXT NOT NULL,
    grantee            TEXT NOT NULL,
    grantee_type       TEXT NOT NULL,
    -- Comma-separated operation names (none contains a comma).
    operations         TEXT NOT NULL,
    issuing_principal  TEXT NOT NULL,
    retiring_principal TEXT,
    name               TEXT NOT NULL,
    creation_ms        BIGINT NOT NULL
);

CREATE INDEX key_grants_key_idx ON key_grants (key_id, creation_ms, grant_id);
CREATE INDEX key_grants_project_idx ON key_grants (project_id);
CREATE INDEX key_grants_retiring_idx ON key_grants (retiring_principal, creation_ms, grant_id);
