//! [`KeyStore`](super::KeyStore) on Postgres, in the `kms` schema.
//!
//! Every key change sends `NOTIFY opendew_kms_keys, '<key id>'` inside its
//! transaction, so the notification is delivered exactly when the change
//! commits; [`KeyStore::watch`](super::KeyStore::watch) turns those into
//! cache invalidations on every replica (`common::db::watch_postgres`).

use sqlx::Postgres;

use super::sql;

/// Postgres-backed key store.
pub type PgKeyStore = sql::SqlKeyStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/postgres");
    const CREATE_KEY_AT_ONCE: Option<&'static str> = Some(PG_CREATE_KEY_AT_ONCE);
}

/// [`sql::Dialect::CREATE_KEY_AT_ONCE`] for Postgres: a write
/// round trip is most of a create's cost there (BEGIN, count, insert,
/// material, count shard, COMMIT were six), and one statement is its own
/// transaction, committed before it answers.
const PG_CREATE_KEY_AT_ONCE: &str = "WITH room AS (\
    SELECT COALESCE(SUM(n), 0) < $22 AS ok FROM key_counts WHERE project_id = $2 AND NOT default_key), \
    k AS (INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, \
    key_spec, key_usage, origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
    scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
    last_rotation_ms, rotations, import_digest) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21 \
    FROM room WHERE ok RETURNING key_id), \
    m AS (INSERT INTO key_materials (key_id, version, wrapped, created_ms) \
    SELECT key_id, 1, $23, $13 FROM k WHERE $23 IS NOT NULL), \
    c AS (INSERT INTO key_counts (project_id, key_spec, key_state, default_key, shard, n) \
    SELECT $2, $6, $9, $10, $24, 1 FROM k \
    ON CONFLICT (project_id, key_spec, key_state, default_key, shard) DO UPDATE SET n = key_counts.n + excluded.n) \
    SELECT CAST(COUNT(*) AS BIGINT) FROM k";
