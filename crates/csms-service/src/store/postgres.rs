//! [`SecretStore`](super::SecretStore) on Postgres, in the `csms` schema:
//! the shared implementation in [`super::sql`] with Postgres' migrations
//! (plain transactions with `FOR UPDATE` row locks, from
//! [`common::db::SqlDialect`]).

use sqlx::Postgres;

use super::sql;

/// Postgres-backed secret store.
pub type PgSecretStore = sql::SqlSecretStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/postgres");
    const CREATE_SECRET_AT_ONCE: Option<&'static str> = Some(PG_CREATE_SECRET_AT_ONCE);
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
}

/// [`sql::Dialect::CREATE_SECRET_AT_ONCE`] for Postgres: there a write round
/// trip is most of a create's cost (BEGIN, count, secret, version, stage,
/// count shard, COMMIT were seven), and one statement is its own
/// transaction, committed before it answers. Foreign keys are checked at
/// the end of the statement, after every part has run.
const PG_CREATE_SECRET_AT_ONCE: &str = "WITH room AS (\
    SELECT COALESCE(SUM(n), 0) < $21 AS ok FROM secret_counts WHERE project_id = $2), \
    s AS (INSERT INTO secrets (id, project_id, name, state, kms_key_id, description, \
    secret_type, auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
    rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
    state_before_delete, next_version) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20 \
    FROM room WHERE ok RETURNING id), \
    v AS (INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, wrapped_dek, ciphertext, \
    create_ms, expire_ms) SELECT $22, $23, $24, $25, $26, $27, $28, $29 FROM s), \
    st AS (INSERT INTO secret_stages (secret_id, stage_name, version, update_ms) SELECT $22, $30, $23, $28 FROM s), \
    c AS (INSERT INTO secret_counts (project_id, shard, n) SELECT $2, $31, 1 FROM s \
    ON CONFLICT (project_id, shard) DO UPDATE SET n = secret_counts.n + excluded.n) \
    SELECT id FROM s";
