-- The database instances an operator registers for a project (issue #33):
-- a rotation of an RDS-FG or GaussDB-FG secret sets the password on the
-- instance its rotation_config names. The administrator's URL, which
-- carries its password, is kept only sealed (under csms-service's instance
-- key, with the project and id as associated data); `display_url` is that
-- URL without its credentials.
CREATE TABLE csms_db_instances (
    project_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    engine      TEXT NOT NULL,
    display_url TEXT NOT NULL,
    sealed_url  BLOB NOT NULL,
    create_ms   BIGINT NOT NULL,
    PRIMARY KEY (project_id, id)
);
