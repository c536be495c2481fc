-- csms-service schema: secrets, their sealed versions and version stages.
-- Values are stored only as AES-256-GCM ciphertext plus the data key
-- wrapped by kms-service; no column holds a plaintext value or data key.

-- One row per project that ever had a secret: locked while a secret is
-- created, so the quota check and the insert are atomic.
CREATE TABLE csms_projects (
    project_id TEXT PRIMARY KEY
);

CREATE TABLE secrets (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL,
    state                 TEXT NOT NULL,
    kms_key_id            TEXT NOT NULL,
    description           TEXT NOT NULL,
    secret_type           TEXT NOT NULL,
    auto_rotation         INTEGER NOT NULL,
    rotation_period       TEXT NOT NULL,
    rotation_config       TEXT NOT NULL,
    event_subscriptions   TEXT NOT NULL,
    enterprise_project_id TEXT NOT NULL,
    rotation_func_urn     TEXT NOT NULL,
    create_ms             BIGINT NOT NULL,
    update_ms             BIGINT NOT NULL,
    scheduled_delete_ms   BIGINT,
    rotation_ms           BIGINT,
    next_rotation_ms      BIGINT,
    CONSTRAINT secrets_project_name_key UNIQUE (project_id, name)
);

CREATE INDEX secrets_project_created_idx ON secrets (project_id, create_ms, id);

CREATE TABLE secret_versions (
    secret_id   TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    kms_key_id  TEXT NOT NULL,
    value_kind  TEXT NOT NULL,
    wrapped_dek BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    create_ms   BIGINT NOT NULL,
    expire_ms   BIGINT,
    PRIMARY KEY (secret_id, version)
);

CREATE TABLE secret_stages (
    secret_id  TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    version    INTEGER NOT NULL,
    update_ms  BIGINT NOT NULL,
    PRIMARY KEY (secret_id, stage_name),
    FOREIGN KEY (secret_id, version) REFERENCES secret_versions (secret_id, version) ON DELETE CASCADE
);

CREATE INDEX secret_stages_version_idx ON secret_stages (secret_id, version);
