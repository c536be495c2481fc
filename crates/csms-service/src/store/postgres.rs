//! [`SecretStore`](super::SecretStore) on Postgres, in the `csms` schema:
//! the shared implementation in [`super::sql`] with Postgres' migrations
//! (plain transactions with `FOR UPDATE` row locks, from
//! [`common::db::SqlDialect`]).

use sqlx::Postgres;

use super::sql::{self, NewSecret};

/// Postgres-backed secret store.
pub type PgSecretStore = sql::SqlSecretStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/postgres");
    const CREATE_SECRET_AT_ONCE: Option<&'static str> = Some(PG_CREATE_SECRET_AT_ONCE);
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const GROUPS_CREATES: bool = true;

    async fn create_secrets_grouped(
        pool: &sqlx::Pool<Postgres>, secrets: &[NewSecret], shard: i32,
    ) -> Result<Vec<bool>, sqlx::Error> {
        let text = |f: &dyn Fn(&NewSecret) -> &str| secrets.iter().map(f).collect::<Vec<_>>();
        let int8 = |f: &dyn Fn(&NewSecret) -> Option<i64>| secrets.iter().map(f).collect::<Vec<_>>();
        let mut tx = common::db::begin_generic_plans(pool).await?;
        let inserted: Vec<(String,)> = sqlx::query_as(PG_CREATE_SECRETS_GROUPED)
            .bind(text(&|n| &n.secret.id))
            .bind(text(&|n| &n.secret.project_id))
            .bind(text(&|n| &n.secret.name))
            .bind(text(&|n| n.secret.state.as_str()))
            .bind(text(&|n| &n.secret.kms_key_id))
            .bind(text(&|n| &n.secret.description))
            .bind(text(&|n| &n.secret.secret_type))
            .bind(secrets.iter().map(|n| n.secret.auto_rotation).collect::<Vec<_>>())
            .bind(text(&|n| &n.secret.rotation_period))
            .bind(text(&|n| &n.secret.rotation_config))
            .bind(
                secrets
                    .iter()
                    .map(|n| serde_json::to_string(&n.secret.event_subscriptions).expect("strings serialise"))
                    .collect::<Vec<_>>(),
            )
            .bind(text(&|n| &n.secret.enterprise_project_id))
            .bind(text(&|n| &n.secret.rotation_func_urn))
            .bind(int8(&|n| Some(n.secret.create_ms)))
            .bind(int8(&|n| Some(n.secret.update_ms)))
            .bind(int8(&|n| n.secret.scheduled_delete_ms))
            .bind(int8(&|n| n.secret.rotation_ms))
            .bind(int8(&|n| n.secret.next_rotation_ms))
            .bind(secrets.iter().map(|n| n.secret.state_before_delete.map(|s| s.as_str())).collect::<Vec<_>>())
            .bind(secrets.iter().map(|n| n.below).collect::<Vec<_>>())
            .bind(secrets.iter().map(|n| n.version.number).collect::<Vec<_>>())
            .bind(text(&|n| &n.version.kms_key_id))
            .bind(text(&|n| n.version.kind.as_str()))
            .bind(secrets.iter().map(|n| n.version.wrapped_dek.as_slice()).collect::<Vec<_>>())
            .bind(secrets.iter().map(|n| n.version.ciphertext.as_slice()).collect::<Vec<_>>())
            .bind(int8(&|n| Some(n.version.create_ms)))
            .bind(int8(&|n| n.version.expire_ms))
            .bind(text(&|n| n.version.stages.first().map_or("", String::as_str)))
            .bind(shard)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let inserted: std::collections::HashSet<String> = inserted.into_iter().map(|(id,)| id).collect();
        Ok(secrets.iter().map(|n| inserted.contains(&n.secret.id)).collect())
    }
}

/// [`sql::Dialect::create_secrets_grouped`] for Postgres: one array per
/// column, `UNNEST`ed in the order given (the writer sorts by project and
/// name). A project's secrets are admitted together while its count plus
/// their number stays within the smallest admission bound among them; a
/// secret whose name is taken (by a committed secret, an in-flight one or
/// an earlier row of this group) is skipped by `ON CONFLICT DO NOTHING`,
/// as is everything of a project near its quota, and answers through the
/// one-row path. Each inserted secret gets its version and stage; the
/// counts are added per project on one shard.
const PG_CREATE_SECRETS_GROUPED: &str = "WITH input AS (\
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
    $8::bool[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::int8[], \
    $16::int8[], $17::int8[], $18::int8[], $19::text[], $20::int8[], $21::int4[], $22::text[], $23::text[], \
    $24::bytea[], $25::bytea[], $26::int8[], $27::int8[], $28::text[]) \
    WITH ORDINALITY AS t(id, project_id, name, state, kms_key_id, description, secret_type, auto_rotation, \
    rotation_period, rotation_config, event_subscriptions, enterprise_project_id, rotation_func_urn, create_ms, \
    update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, state_before_delete, below, version, \
    v_kms_key_id, value_kind, wrapped_dek, ciphertext, v_create_ms, expire_ms, stage, ord)), \
    room AS (SELECT w.project_id FROM (SELECT project_id, COUNT(*) AS n, MIN(below) AS below FROM input \
    GROUP BY project_id) w WHERE COALESCE((SELECT SUM(c.n) FROM secret_counts c \
    WHERE c.project_id = w.project_id), 0) + w.n <= w.below), \
    s AS (INSERT INTO secrets (id, project_id, name, state, kms_key_id, description, secret_type, \
    auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
    rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
    state_before_delete, next_version) \
    SELECT i.id, i.project_id, i.name, i.state, i.kms_key_id, i.description, i.secret_type, i.auto_rotation, \
    i.rotation_period, i.rotation_config, i.event_subscriptions, i.enterprise_project_id, i.rotation_func_urn, \
    i.create_ms, i.update_ms, i.scheduled_delete_ms, i.rotation_ms, i.next_rotation_ms, i.state_before_delete, \
    i.version + 1 FROM input i JOIN room r ON r.project_id = i.project_id ORDER BY i.ord \
    ON CONFLICT DO NOTHING RETURNING id, project_id), \
    v AS (INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, wrapped_dek, ciphertext, \
    create_ms, expire_ms) SELECT i.id, i.version, i.v_kms_key_id, i.value_kind, i.wrapped_dek, i.ciphertext, \
    i.v_create_ms, i.expire_ms FROM s JOIN input i ON i.id = s.id ORDER BY i.ord), \
    st AS (INSERT INTO secret_stages (secret_id, stage_name, version, update_ms) \
    SELECT i.id, i.stage, i.version, i.v_create_ms FROM s JOIN input i ON i.id = s.id ORDER BY i.ord), \
    c AS (INSERT INTO secret_counts (project_id, shard, n) SELECT project_id, $29, COUNT(*) FROM s \
    GROUP BY project_id ORDER BY project_id \
    ON CONFLICT (project_id, shard) DO UPDATE SET n = secret_counts.n + excluded.n) \
    SELECT id FROM s";

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
