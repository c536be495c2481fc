//! [`KeyStore`](super::KeyStore) on Postgres, in the `kms` schema.
//!
//! Every key change sends `NOTIFY opendew_kms_keys, '<key id>'` inside its
//! transaction, so the notification is delivered exactly when the change
//! commits; [`Keys::watch`](super::Keys::watch) turns those into
//! cache invalidations on every replica (`common::db::watch_postgres`).

use sqlx::Postgres;

use super::{NewKey, sql};
use crate::domain::KeyRecord;

/// Postgres-backed key store.
pub type PgKeyStore = sql::SqlKeyStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/postgres");
    const CREATE_KEY_AT_ONCE: Option<&'static str> = Some(PG_CREATE_KEY_AT_ONCE);
    const GROUPS_CREATES: bool = true;

    async fn create_keys_grouped(
        pool: &sqlx::Pool<Postgres>, keys: &[(&NewKey, i64)], shard: i32,
    ) -> Result<Vec<bool>, sqlx::Error> {
        let col = |f: &dyn Fn(&KeyRecord) -> String| keys.iter().map(|(k, _)| f(&k.record)).collect::<Vec<_>>();
        let mut tx = common::db::begin_generic_plans(pool).await?;
        let inserted: Vec<(String,)> = sqlx::query_as(PG_CREATE_KEYS_GROUPED)
            .bind(col(&|r| r.key_id.to_string()))
            .bind(col(&|r| r.project_id.clone()))
            .bind(col(&|r| r.domain_id.clone()))
            .bind(col(&|r| r.alias.clone()))
            .bind(col(&|r| r.description.clone()))
            .bind(col(&|r| r.spec.as_str().to_owned()))
            .bind(col(&|r| r.usage.as_str().to_owned()))
            .bind(col(&|r| r.origin.as_str().to_owned()))
            .bind(keys.iter().map(|(k, _)| k.record.state as i32).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.default_key).collect::<Vec<_>>())
            .bind(col(&|r| r.enterprise_project_id.clone()))
            .bind(keys.iter().map(|(k, _)| k.record.rotation_enabled).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.creation_ms).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.scheduled_deletion_ms).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.expiration_ms).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.material_version).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.rotation_interval_days as i32).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.rotation_anchor_ms).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.last_rotation_ms).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.rotations as i32).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.record.import_digest.clone()).collect::<Vec<_>>())
            .bind(keys.iter().map(|(_, below)| *below).collect::<Vec<_>>())
            .bind(keys.iter().map(|(k, _)| k.wrapped_material.clone()).collect::<Vec<_>>())
            .bind(shard)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let inserted: std::collections::HashSet<String> = inserted.into_iter().map(|(id,)| id).collect();
        Ok(keys.iter().map(|(k, _)| inserted.contains(&k.record.key_id.to_string())).collect())
    }
}

/// [`sql::Dialect::create_keys_grouped`] for Postgres: one array per
/// column, `UNNEST`ed in the order given (the writer sorts by project and
/// alias). A project's keys are admitted together while its count plus
/// their number stays within the smallest admission bound among them; a
/// key whose alias is taken (by a committed key, an in-flight one, or an
/// earlier row of this group) is skipped by `ON CONFLICT DO NOTHING`, as is
/// everything of a project near its quota, and answers through the one-row
/// path. The counts are added per (project, spec, state, default) group, in
/// key order, on one shard.
const PG_CREATE_KEYS_GROUPED: &str = "WITH input AS (\
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
    $8::text[], $9::int4[], $10::bool[], $11::text[], $12::bool[], $13::int8[], $14::int8[], $15::int8[], \
    $16::int4[], $17::int4[], $18::int8[], $19::int8[], $20::int4[], $21::bytea[], $22::int8[], $23::bytea[]) \
    WITH ORDINALITY AS t(key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, origin, \
    key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, scheduled_deletion_ms, \
    expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, last_rotation_ms, rotations, \
    import_digest, below, wrapped, ord)), \
    room AS (SELECT w.project_id FROM (SELECT project_id, COUNT(*) AS n, MIN(below) AS below FROM input \
    GROUP BY project_id) w WHERE COALESCE((SELECT SUM(c.n) FROM key_counts c \
    WHERE c.project_id = w.project_id AND NOT c.default_key), 0) + w.n <= w.below), \
    k AS (INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, \
    key_spec, key_usage, origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
    scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
    last_rotation_ms, rotations, import_digest) \
    SELECT i.key_id, i.project_id, i.domain_id, i.key_alias, i.key_description, i.key_spec, i.key_usage, \
    i.origin, i.key_state, i.default_key, i.enterprise_project_id, i.rotation_enabled, i.creation_ms, \
    i.scheduled_deletion_ms, i.expiration_ms, i.material_version, i.rotation_interval_days, \
    i.rotation_anchor_ms, i.last_rotation_ms, i.rotations, i.import_digest \
    FROM input i JOIN room r ON r.project_id = i.project_id ORDER BY i.ord \
    ON CONFLICT DO NOTHING RETURNING key_id, project_id, key_spec, key_state, default_key), \
    m AS (INSERT INTO key_materials (key_id, version, wrapped, created_ms) \
    SELECT i.key_id, 1, i.wrapped, i.creation_ms FROM k JOIN input i ON i.key_id = k.key_id \
    WHERE i.wrapped IS NOT NULL ORDER BY i.ord), \
    c AS (INSERT INTO key_counts (project_id, key_spec, key_state, default_key, shard, n) \
    SELECT project_id, key_spec, key_state, default_key, $24, COUNT(*) FROM k \
    GROUP BY project_id, key_spec, key_state, default_key ORDER BY project_id, key_spec, key_state, default_key \
    ON CONFLICT (project_id, key_spec, key_state, default_key, shard) DO UPDATE SET n = key_counts.n + excluded.n) \
    SELECT key_id FROM k";

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
