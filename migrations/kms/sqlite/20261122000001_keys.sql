-- kms-service schema: master keys and their root-key-wrapped material.
-- No column ever holds plaintext material.

CREATE TABLE kms_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per project that ever had a key: locked inside a BEGIN IMMEDIATE transaction while a key is
-- created, so the quota check and the insert are atomic.
CREATE TABLE kms_projects (
    project_id TEXT PRIMARY KEY
);

CREATE TABLE keys (
    key_id                TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL,
    domain_id             TEXT NOT NULL,
    key_alias             TEXT NOT NULL,
    key_description       TEXT NOT NULL,
    key_spec              TEXT NOT NULL,
    key_usage             TEXT NOT NULL,
    origin                TEXT NOT NULL,
    key_state             INTEGER NOT NULL,
    default_key           INTEGER NOT NULL,
    enterprise_project_id TEXT NOT NULL,
    rotation_enabled      INTEGER NOT NULL,
    creation_ms           BIGINT NOT NULL,
    scheduled_deletion_ms BIGINT,
    expiration_ms         BIGINT,
    material_version      INTEGER,
    CONSTRAINT keys_project_alias_key UNIQUE (project_id, key_alias)
);

CREATE INDEX keys_project_created_idx ON keys (project_id, creation_ms, key_id);

CREATE TABLE key_materials (
    key_id     TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    wrapped    BLOB NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);
