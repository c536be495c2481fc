-- The gateway's identity store: domains (accounts) own projects and users;
-- users own access keys. The SK is stored sealed (AES-256-GCM under the
-- gateway's identity key), never in plaintext; passwords as argon2id hashes.
CREATE TABLE iam_domains (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    create_ms BIGINT NOT NULL,
    CONSTRAINT iam_domains_name_key UNIQUE (name)
);

CREATE TABLE iam_projects (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL REFERENCES iam_domains (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    create_ms BIGINT NOT NULL,
    CONSTRAINT iam_projects_domain_name_key UNIQUE (domain_id, name)
);

CREATE TABLE iam_users (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL REFERENCES iam_domains (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    create_ms BIGINT NOT NULL,
    CONSTRAINT iam_users_domain_name_key UNIQUE (domain_id, name)
);

CREATE TABLE iam_access_keys (
    access_key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES iam_users (id) ON DELETE CASCADE,
    sealed_secret BLOB NOT NULL,
    enabled BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    create_ms BIGINT NOT NULL
);

-- Bumped by every change in the same transaction; gateway replicas poll it
-- and reload their in-memory directory when it moves.
CREATE TABLE iam_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO iam_version (id, version) VALUES (1, 0);
