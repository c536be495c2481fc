//! The SQL text both backends share, and the rows they return.

use super::super::StoreError;
use crate::domain::{SecretRecord, SecretState, ValueKind, VersionRecord};

/// SQL shared by both backends.
pub mod text {
    pub const SECRET_COLUMNS: &str = "id, project_id, name, state, kms_key_id, description, secret_type, \
        auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
        state_before_delete";

    pub const INSERT_SECRET: &str = "INSERT INTO secrets (id, project_id, name, state, kms_key_id, description, \
        secret_type, auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
        state_before_delete, next_version) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

    pub const UPDATE_SECRET: &str = "UPDATE secrets SET state = $3, kms_key_id = $4, description = $5, \
        auto_rotation = $6, rotation_period = $7, event_subscriptions = $8, rotation_func_urn = $9, update_ms = $10, \
        scheduled_delete_ms = $11, next_rotation_ms = $12, state_before_delete = $13 \
        WHERE project_id = $1 AND id = $2";

    pub const UPSERT_STAGE: &str = "INSERT INTO secret_stages (secret_id, stage_name, version, update_ms) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (secret_id, stage_name) \
        DO UPDATE SET version = excluded.version, update_ms = excluded.update_ms";

    pub const STAGES_OF_SECRET: &str =
        "SELECT stage_name, version, update_ms FROM secret_stages WHERE secret_id = $1 ORDER BY stage_name";

    pub const OLDEST_DEPRECATED: &str = "SELECT v.version FROM secret_versions v WHERE v.secret_id = $1 \
        AND v.version <> $2 AND NOT EXISTS (SELECT 1 FROM secret_stages s WHERE s.secret_id = v.secret_id \
        AND s.version = v.version) ORDER BY v.version LIMIT 1";

    pub const INSERT_VERSION: &str = "INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, \
        wrapped_dek, ciphertext, create_ms, expire_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    pub const COUNT_SECRETS: &str =
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM secret_counts WHERE project_id = $1";

    pub const ADD_SECRET_COUNT: &str = "INSERT INTO secret_counts (project_id, shard, n) VALUES ($1, $2, $3) \
        ON CONFLICT (project_id, shard) DO UPDATE SET n = secret_counts.n + excluded.n";

    pub const VERSION_COLUMNS: &str =
        "v.secret_id, v.version, v.kms_key_id, v.value_kind, v.wrapped_dek, v.ciphertext, v.create_ms, v.expire_ms";

    pub const STAGES_OF_VERSION: &str =
        "SELECT stage_name FROM secret_stages WHERE secret_id = $1 AND version = $2 ORDER BY stage_name";

    /// The read path: `$3` stage or NULL, `$4` version number or NULL.
    /// `agg` is the dialect's string aggregate (`string_agg`, `group_concat`);
    /// stage names cannot contain a comma.
    pub fn read_secret_version(agg: &str) -> String {
        let columns = SECRET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        format!(
            "SELECT {columns}, v.version, v.kms_key_id AS v_kms_key_id, v.value_kind, v.wrapped_dek, v.ciphertext, \
             v.create_ms AS v_create_ms, v.expire_ms, \
             (SELECT {agg}(x.stage_name, ',') FROM secret_stages x WHERE x.secret_id = v.secret_id \
              AND x.version = v.version) AS stages \
             FROM secrets s \
             LEFT JOIN secret_stages st ON st.secret_id = s.id AND st.stage_name = $3 \
             LEFT JOIN secret_versions v ON v.secret_id = s.id AND v.version = COALESCE(st.version, $4) \
             WHERE s.project_id = $1 AND s.name = $2"
        )
    }

    pub fn select_secret() -> String {
        format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE project_id = $1 AND name = $2")
    }

    pub fn select_version() -> String {
        format!("SELECT {VERSION_COLUMNS} FROM secret_versions v WHERE v.secret_id = $1 AND v.version = $2")
    }

    pub fn select_version_by_stage() -> String {
        format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions v JOIN secret_stages s \
             ON s.secret_id = v.secret_id AND s.version = v.version WHERE s.secret_id = $1 AND s.stage_name = $2"
        )
    }
}

/// A secret joined with one of its versions (read path).
/// Ciphertexts only: `Debug` shows nothing secret.
#[derive(Debug, sqlx::FromRow)]
pub struct ReadRow {
    #[sqlx(flatten)]
    pub(super) secret: SecretRow,
    pub(super) version: Option<i32>,
    pub(super) v_kms_key_id: Option<String>,
    pub(super) value_kind: Option<String>,
    pub(super) wrapped_dek: Option<Vec<u8>>,
    pub(super) ciphertext: Option<Vec<u8>>,
    pub(super) v_create_ms: Option<i64>,
    pub(super) expire_ms: Option<i64>,
    pub(super) stages: Option<String>,
}

impl ReadRow {
    pub fn into_records(self) -> Result<(SecretRecord, Option<VersionRecord>), StoreError> {
        let secret = SecretRecord::try_from(self.secret)?;
        let version = match (
            self.version,
            self.v_kms_key_id,
            self.value_kind,
            self.wrapped_dek,
            self.ciphertext,
            self.v_create_ms,
        ) {
            (Some(number), Some(kms_key_id), Some(kind), Some(wrapped_dek), Some(ciphertext), Some(create_ms)) => {
                let mut stages: Vec<String> =
                    self.stages.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                stages.sort();
                Some(VersionRecord {
                    secret_id: secret.id.clone(),
                    number,
                    kms_key_id,
                    kind: ValueKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(secret.id.clone()))?,
                    wrapped_dek,
                    ciphertext,
                    create_ms,
                    expire_ms: self.expire_ms,
                    stages,
                })
            }
            _ => None,
        };
        Ok((secret, version))
    }
}

/// A `secrets` row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub struct SecretRow {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) kms_key_id: String,
    pub(super) description: String,
    pub(super) secret_type: String,
    pub(super) auto_rotation: bool,
    pub(super) rotation_period: String,
    pub(super) rotation_config: String,
    pub(super) event_subscriptions: String,
    pub(super) enterprise_project_id: String,
    pub(super) rotation_func_urn: String,
    pub(super) create_ms: i64,
    pub(super) update_ms: i64,
    pub(super) scheduled_delete_ms: Option<i64>,
    pub(super) rotation_ms: Option<i64>,
    pub(super) next_rotation_ms: Option<i64>,
    pub(super) state_before_delete: Option<String>,
}

impl TryFrom<SecretRow> for SecretRecord {
    type Error = StoreError;

    fn try_from(row: SecretRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(row.id.clone());
        Ok(SecretRecord {
            state: SecretState::parse(&row.state).ok_or_else(corrupt)?,
            event_subscriptions: serde_json::from_str(&row.event_subscriptions).map_err(|_| corrupt())?,
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            kms_key_id: row.kms_key_id,
            description: row.description,
            secret_type: row.secret_type,
            auto_rotation: row.auto_rotation,
            rotation_period: row.rotation_period,
            rotation_config: row.rotation_config,
            enterprise_project_id: row.enterprise_project_id,
            rotation_func_urn: row.rotation_func_urn,
            create_ms: row.create_ms,
            update_ms: row.update_ms,
            scheduled_delete_ms: row.scheduled_delete_ms,
            rotation_ms: row.rotation_ms,
            next_rotation_ms: row.next_rotation_ms,
            state_before_delete: row.state_before_delete.as_deref().and_then(SecretState::parse),
        })
    }
}

/// A `secret_versions` row as both backends return it.
/// Ciphertexts only: `Debug` shows nothing secret.
#[derive(Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub(super) secret_id: String,
    pub(super) version: i32,
    pub(super) kms_key_id: String,
    pub(super) value_kind: String,
    pub(super) wrapped_dek: Vec<u8>,
    pub(super) ciphertext: Vec<u8>,
    pub(super) create_ms: i64,
    pub(super) expire_ms: Option<i64>,
}

impl VersionRow {
    pub fn into_record(self, stages: Vec<String>) -> Result<VersionRecord, StoreError> {
        Ok(VersionRecord {
            kind: ValueKind::parse(&self.value_kind).ok_or_else(|| StoreError::Corrupt(self.secret_id.clone()))?,
            secret_id: self.secret_id,
            number: self.version,
            kms_key_id: self.kms_key_id,
            wrapped_dek: self.wrapped_dek,
            ciphertext: self.ciphertext,
            create_ms: self.create_ms,
            expire_ms: self.expire_ms,
            stages,
        })
    }
}
