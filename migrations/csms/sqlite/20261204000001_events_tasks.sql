-- Events (notification rules), the notification records they leave, and
-- rotation tasks.

-- A project-level notification rule; a secret names at most one in its
-- event_subscriptions.
CREATE TABLE csms_events (
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    id          TEXT NOT NULL,
    -- JSON array of base event types, e.g. ["SECRET_ROTATED"].
    event_types TEXT NOT NULL,
    state       TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    target_name TEXT NOT NULL,
    create_ms   BIGINT NOT NULL,
    update_ms   BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- One row per firing of an enabled event: written in the transaction of
-- the change that fired it (an outbox), so a committed change never loses
-- its notification. next_attempt_ms is set while the record still waits
-- for its sink; the delivery task claims due rows by moving it forward (a
-- lease), so one replica delivers each and a crash mid-delivery retries.
CREATE TABLE csms_notifications (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    event_name      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    secret_name     TEXT NOT NULL,
    secret_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    target_name     TEXT NOT NULL,
    content         TEXT NOT NULL,
    status          TEXT NOT NULL,
    create_ms       BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT,
    last_error      TEXT
);

CREATE INDEX csms_notifications_project_idx ON csms_notifications (project_id, create_ms, id);
CREATE INDEX csms_notifications_due_idx ON csms_notifications (next_attempt_ms) WHERE next_attempt_ms IS NOT NULL;

-- Rotation attempts. Ids are UUIDv7, so their order is their time order
-- and the list's marker (a task id) is a keyset position.
CREATE TABLE csms_tasks (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    secret_name       TEXT NOT NULL,
    rotation_func_urn TEXT NOT NULL,
    status            TEXT NOT NULL,
    operate_type      TEXT NOT NULL,
    task_ms           BIGINT NOT NULL,
    attempts          INTEGER NOT NULL,
    error_code        TEXT NOT NULL,
    error_msg         TEXT NOT NULL
);

CREATE INDEX csms_tasks_project_idx ON csms_tasks (project_id, id);

-- SECRET_VERSION_EXPIRED fires once per expire_time setting: the expiry a
-- notice was sent for.
ALTER TABLE secret_versions ADD COLUMN expiry_notified_ms BIGINT;
CREATE INDEX secret_versions_expiry_idx ON secret_versions (expire_ms) WHERE expire_ms IS NOT NULL;

-- Secrets whose automatic rotation is due.
CREATE INDEX secrets_rotation_due_idx ON secrets (next_rotation_ms) WHERE auto_rotation;
