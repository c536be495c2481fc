//! Persistence of secrets behind one trait, with sibling Postgres and
//! SQLite implementations sharing their SQL text (both accept `$n`
//! placeholders); they differ only in DDL and locking. The conformance
//! suite in [`conformance`] runs against both.

use async_trait::async_trait;

use crate::domain::{SecretRecord, SecretState, ValueKind, VersionRecord};

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

/// A storage failure with a sentence of context.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("{context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored row does not decode into the domain model.
    #[error("corrupt row of secret {0}")]
    Corrupt(String),
    /// Migrations failed at start.
    #[error("migrating the csms schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }
}

/// Why [`SecretStore::create_secret`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateSecretError {
    /// The project already has a secret with this name.
    #[error("name already in use")]
    NameTaken,
    /// The project's secret quota is used up.
    #[error("secret quota reached")]
    QuotaExceeded,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of secrets, versions and stages.
#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Inserts a secret, its first version and that version's stages in one
    /// transaction. Name uniqueness is a constraint; `quota` counts the
    /// project's secrets under a per-project lock.
    async fn create_secret(
        &self,
        secret: &SecretRecord,
        first: &VersionRecord,
        quota: u64,
    ) -> Result<(), CreateSecretError>;

    /// One secret of a project by name.
    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// One version by number, with its stages.
    async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError>;

    /// The version a stage points at, with its stages.
    async fn get_version_by_stage(&self, secret_id: &str, stage: &str) -> Result<Option<VersionRecord>, StoreError>;
}

/// SQL shared by both backends.
pub(crate) mod sql {
    pub const SECRET_COLUMNS: &str = "id, project_id, name, state, kms_key_id, description, secret_type, \
        auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms";

    pub const INSERT_SECRET: &str = "INSERT INTO secrets (id, project_id, name, state, kms_key_id, description, \
        secret_type, auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

    pub const INSERT_VERSION: &str = "INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, \
        wrapped_dek, ciphertext, create_ms, expire_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    pub const INSERT_STAGE: &str =
        "INSERT INTO secret_stages (secret_id, stage_name, version, update_ms) VALUES ($1, $2, $3, $4)";

    pub const ENSURE_PROJECT: &str = "INSERT INTO csms_projects (project_id) VALUES ($1) ON CONFLICT DO NOTHING";

    pub const COUNT_SECRETS: &str = "SELECT COUNT(*) FROM secrets WHERE project_id = $1";

    pub const VERSION_COLUMNS: &str =
        "v.secret_id, v.version, v.kms_key_id, v.value_kind, v.wrapped_dek, v.ciphertext, v.create_ms, v.expire_ms";

    pub const STAGES_OF_VERSION: &str =
        "SELECT stage_name FROM secret_stages WHERE secret_id = $1 AND version = $2 ORDER BY stage_name";

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

/// A `secrets` row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SecretRow {
    id: String,
    project_id: String,
    name: String,
    state: String,
    kms_key_id: String,
    description: String,
    secret_type: String,
    auto_rotation: bool,
    rotation_period: String,
    rotation_config: String,
    event_subscriptions: String,
    enterprise_project_id: String,
    rotation_func_urn: String,
    create_ms: i64,
    update_ms: i64,
    scheduled_delete_ms: Option<i64>,
    rotation_ms: Option<i64>,
    next_rotation_ms: Option<i64>,
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
        })
    }
}

/// A `secret_versions` row as both backends return it.
#[derive(sqlx::FromRow)]
pub(crate) struct VersionRow {
    secret_id: String,
    version: i32,
    kms_key_id: String,
    value_kind: String,
    wrapped_dek: Vec<u8>,
    ciphertext: Vec<u8>,
    create_ms: i64,
    expire_ms: Option<i64>,
}

impl VersionRow {
    pub(crate) fn into_record(self, stages: Vec<String>) -> Result<VersionRecord, StoreError> {
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

/// Binds a [`SecretRecord`] to [`sql::INSERT_SECRET`], for either backend.
macro_rules! bind_secret {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.id)
            .bind(&$s.project_id)
            .bind(&$s.name)
            .bind($s.state.as_str())
            .bind(&$s.kms_key_id)
            .bind(&$s.description)
            .bind(&$s.secret_type)
            .bind($s.auto_rotation)
            .bind(&$s.rotation_period)
            .bind(&$s.rotation_config)
            .bind(serde_json::to_string(&$s.event_subscriptions).expect("strings serialise"))
            .bind(&$s.enterprise_project_id)
            .bind(&$s.rotation_func_urn)
            .bind($s.create_ms)
            .bind($s.update_ms)
            .bind($s.scheduled_delete_ms)
            .bind($s.rotation_ms)
            .bind($s.next_rotation_ms)
    };
}
pub(crate) use bind_secret;

/// Binds a [`VersionRecord`] to [`sql::INSERT_VERSION`], for either backend.
macro_rules! bind_version {
    ($query:expr, $v:expr) => {
        $query
            .bind(&$v.secret_id)
            .bind($v.number)
            .bind(&$v.kms_key_id)
            .bind($v.kind.as_str())
            .bind(&$v.wrapped_dek)
            .bind(&$v.ciphertext)
            .bind($v.create_ms)
            .bind($v.expire_ms)
    };
}
pub(crate) use bind_version;
