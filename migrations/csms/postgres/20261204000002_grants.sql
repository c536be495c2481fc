-- Grants: a secret shared with a user of any account, who may then read
-- it (show, list versions, read a version) by the secret's id. Checked by
-- csms-service on every such read; gone with the secret.
CREATE TABLE csms_grants (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    secret_id   TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    grantee_id  TEXT NOT NULL,
    create_ms   BIGINT NOT NULL,
    update_ms   BIGINT NOT NULL,
    -- The grant ends at this time (ms); NULL: until deleted.
    validity_ms BIGINT,
    CONSTRAINT csms_grants_secret_grantee_key UNIQUE (secret_id, grantee_id)
);

CREATE INDEX csms_grants_grantee_idx ON csms_grants (grantee_id, secret_id);

-- Per-project settings (the secret checker's switch).
CREATE TABLE csms_settings (
    project_id               TEXT PRIMARY KEY,
    checking_secret_strength BOOLEAN NOT NULL
);

-- Service agencies a project created for database-secret rotation
-- (create_agency), by secret type.
CREATE TABLE csms_agencies (
    project_id  TEXT NOT NULL,
    secret_type TEXT NOT NULL,
    agency_name TEXT NOT NULL,
    agency_id   TEXT NOT NULL,
    create_ms   BIGINT NOT NULL,
    PRIMARY KEY (project_id, secret_type, agency_name)
);
