//! Persistence of secrets behind one trait, with sibling Postgres and
//! SQLite implementations sharing their SQL text (both accept `$n`
//! placeholders); they differ only in DDL and locking. The conformance
//! suite in [`conformance`] runs against both.

use async_trait::async_trait;

use crate::{
    domain::{
        MAX_STAGES, MAX_TAGS, MAX_VERSIONS, SYSCURRENT, SYSPREVIOUS, SecretRecord, SecretState, ValueKind,
        VersionRecord,
    },
    error::CsmsError,
};

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

/// A change to a secret's metadata or state, applied to the current row
/// under a lock; an error leaves the row unchanged.
pub type SecretMutation = Box<dyn FnOnce(&mut SecretRecord) -> Result<(), CsmsError> + Send>;

/// A check of a secret's current state before a write.
pub type SecretCheck = Box<dyn FnOnce(&SecretRecord) -> Result<(), CsmsError> + Send>;

/// A stage and where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    /// Stage name.
    pub name: String,
    /// Version number it marks.
    pub version: i32,
    /// When it last moved, ms.
    pub update_ms: i64,
}

/// Storage of secrets, versions, stages and tags. Writes that must see a
/// consistent secret lock its row (Postgres `FOR UPDATE`, SQLite
/// `BEGIN IMMEDIATE`) for the length of one short transaction.
#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// One trivial statement: is the database reachable? Health checks use
    /// it (kms-service does not count it as a round trip of the hot path).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a secret and its versions (each with its stages) in one
    /// transaction. Name uniqueness is a constraint; `quota` counts the
    /// project's secrets under a per-project lock.
    async fn create_secret(
        &self,
        secret: &SecretRecord,
        versions: &[VersionRecord],
        quota: u64,
    ) -> Result<(), CreateSecretError>;

    /// One secret of a project by name.
    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// One secret of a project by id.
    async fn get_secret_by_id(&self, project_id: &str, id: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// Up to `limit` secrets by name, after `after`; only those subscribed
    /// to `event` when given.
    async fn list_secrets(
        &self,
        project_id: &str,
        after: Option<&str>,
        limit: u32,
        event: Option<&str>,
    ) -> Result<Vec<SecretRecord>, StoreError>;

    /// Applies `change` to a secret under its row lock.
    async fn update_secret(
        &self,
        project_id: &str,
        name: &str,
        change: SecretMutation,
    ) -> Result<SecretRecord, CsmsError>;

    /// Deletes a secret with its versions, stages and tags. False when absent.
    async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError>;

    /// Deletes the secrets whose scheduled deletion time is at or before
    /// `now_ms`; returns their ids. Safe on several replicas at once.
    async fn purge_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Reserves the next version number of a secret after `check` passed.
    async fn reserve_version(
        &self,
        project_id: &str,
        name: &str,
        check: SecretCheck,
    ) -> Result<(SecretRecord, i32), CsmsError>;

    /// Inserts a sealed version and moves its stages onto it, in one
    /// transaction: `version.stages` are moved from whichever version held
    /// them; if SYSCURRENT moves, the version that held it gets SYSPREVIOUS.
    /// Beyond [`MAX_VERSIONS`] the oldest version without stages is deleted.
    async fn insert_version(
        &self,
        project_id: &str,
        version: &VersionRecord,
        check: SecretCheck,
    ) -> Result<VersionRecord, CsmsError>;

    /// The read path in one round trip: a secret by name and the version
    /// named by `stage` (when given) or by `number`, with its stages. The
    /// version is `None` when the secret exists but the version does not.
    async fn read_secret_version(
        &self,
        project_id: &str,
        name: &str,
        stage: Option<&str>,
        number: Option<i32>,
    ) -> Result<Option<(SecretRecord, Option<VersionRecord>)>, StoreError>;

    /// One version by number, with its stages.
    async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError>;

    /// The version a stage points at, with its stages.
    async fn get_version_by_stage(&self, secret_id: &str, stage: &str) -> Result<Option<VersionRecord>, StoreError>;

    /// Versions in ascending order after `after`, at most `limit`.
    async fn list_versions(
        &self,
        secret_id: &str,
        after: Option<i32>,
        limit: u32,
    ) -> Result<Vec<VersionRecord>, StoreError>;

    /// Sets a version's expiry.
    async fn set_version_expiry(
        &self,
        project_id: &str,
        name: &str,
        number: i32,
        expire_ms: Option<i64>,
        check: SecretCheck,
    ) -> Result<VersionRecord, CsmsError>;

    /// One stage of a secret.
    async fn get_stage(&self, secret_id: &str, stage: &str) -> Result<Option<StageRecord>, StoreError>;

    /// Points a stage at a version (creating it if needed); moving
    /// SYSCURRENT gives SYSPREVIOUS to its previous holder.
    async fn set_stage(
        &self,
        project_id: &str,
        name: &str,
        stage: &str,
        number: i32,
        check: SecretCheck,
    ) -> Result<StageRecord, CsmsError>;

    /// Removes a custom stage.
    async fn delete_stage(
        &self,
        project_id: &str,
        name: &str,
        stage: &str,
        check: SecretCheck,
    ) -> Result<(), CsmsError>;

    /// Upserts tags (one value per key), keeping at most [`MAX_TAGS`].
    async fn put_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        tags: &[(String, String)],
        check: SecretCheck,
    ) -> Result<(), CsmsError>;

    /// Removes tags by key; absent keys are ignored unless `must_exist`.
    async fn delete_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        keys: &[String],
        must_exist: bool,
        check: SecretCheck,
    ) -> Result<(), CsmsError>;

    /// Tags of one secret, by key.
    async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Every secret of a project with its tags, by name.
    async fn secrets_with_tags(
        &self,
        project_id: &str,
    ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError>;
}

/// SQL shared by both backends.
pub(crate) mod sql {
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

    pub const UPSERT_TAG: &str = "INSERT INTO secret_tags (secret_id, tag_key, tag_value) VALUES ($1, $2, $3) \
        ON CONFLICT (secret_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value";

    pub const PROJECT_TAGS: &str = "SELECT t.secret_id, t.tag_key, t.tag_value FROM secret_tags t \
        JOIN secrets s ON s.id = t.secret_id WHERE s.project_id = $1 ORDER BY t.tag_key, t.tag_value";

    pub const INSERT_VERSION: &str = "INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, \
        wrapped_dek, ciphertext, create_ms, expire_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    pub const ENSURE_PROJECT: &str = "INSERT INTO csms_projects (project_id) VALUES ($1) ON CONFLICT DO NOTHING";

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
#[derive(sqlx::FromRow)]
pub(crate) struct ReadRow {
    #[sqlx(flatten)]
    secret: SecretRow,
    version: Option<i32>,
    v_kms_key_id: Option<String>,
    value_kind: Option<String>,
    wrapped_dek: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
    v_create_ms: Option<i64>,
    expire_ms: Option<i64>,
    stages: Option<String>,
}

impl ReadRow {
    pub(crate) fn into_records(self) -> Result<(SecretRecord, Option<VersionRecord>), StoreError> {
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
    state_before_delete: Option<String>,
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
            .bind($s.state_before_delete.map(|st| st.as_str()))
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

/// Shards per secret count (see the secret_counts migration).
pub const COUNT_SHARDS: u32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many secrets of its quota; the quota stays exact as long as fewer creates
/// than this are in flight at once across all replicas.
pub const QUOTA_HEADROOM: u64 = 1024;

/// Implements [`SecretStore`] for a backend. The two sibling modules call
/// it with their pool's database type, their migrations and their row-lock
/// clause (`FOR UPDATE` on Postgres; nothing on SQLite, whose
/// `BEGIN IMMEDIATE` already serialises writers); each provides `begin`
/// and `lock_project`. The SQL text is shared: both accept `$n` and
/// `ON CONFLICT … DO UPDATE`.
macro_rules! impl_secret_store {
    ($store:ty, $db:ty, $migrations:literal, $lock:literal, $agg:literal) => {
        impl $store {
            async fn lock_secret(
                tx: &mut sqlx::Transaction<'static, $db>,
                project_id: &str,
                by: &str,
                value: &str,
            ) -> Result<Option<SecretRecord>, StoreError> {
                let query =
                    format!("SELECT {} FROM secrets WHERE project_id = $1 AND {by} = $2{}", sql::SECRET_COLUMNS, $lock);
                let row: Option<SecretRow> = sqlx::query_as(&query)
                    .bind(project_id)
                    .bind(value)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(StoreError::db("locking a secret"))?;
                row.map(SecretRecord::try_from).transpose()
            }

            async fn checked(
                tx: &mut sqlx::Transaction<'static, $db>,
                project_id: &str,
                by: &str,
                value: &str,
                check: SecretCheck,
            ) -> Result<SecretRecord, CsmsError> {
                let secret = Self::lock_secret(tx, project_id, by, value).await?.ok_or(match by {
                    "id" => CsmsError::ResourceNotFound("secret"),
                    _ => CsmsError::SecretNotFound,
                })?;
                check(&secret)?;
                Ok(secret)
            }

            async fn stages_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                secret_id: &str,
            ) -> Result<Vec<StageRecord>, StoreError> {
                let rows: Vec<(String, i32, i64)> = sqlx::query_as(sql::STAGES_OF_SECRET)
                    .bind(secret_id)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(StoreError::db("reading stages"))?;
                Ok(rows
                    .into_iter()
                    .map(|(name, version, update_ms)| StageRecord { name, version, update_ms })
                    .collect())
            }

            async fn upsert_stage(
                tx: &mut sqlx::Transaction<'static, $db>,
                secret_id: &str,
                stage: &str,
                version: i32,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::UPSERT_STAGE)
                    .bind(secret_id)
                    .bind(stage)
                    .bind(version)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::db("moving a stage"))?;
                Ok(())
            }

            async fn version_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                secret_id: &str,
                number: i32,
            ) -> Result<Option<VersionRecord>, StoreError> {
                let row: Option<VersionRow> = sqlx::query_as(&sql::select_version())
                    .bind(secret_id)
                    .bind(number)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(StoreError::db("reading a secret version"))?;
                let Some(row) = row else { return Ok(None) };
                let stages: Vec<String> = sqlx::query_scalar(sql::STAGES_OF_VERSION)
                    .bind(secret_id)
                    .bind(number)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(StoreError::db("reading version stages"))?;
                row.into_record(stages).map(Some)
            }

            async fn insert_versions(
                tx: &mut sqlx::Transaction<'static, $db>,
                versions: &[VersionRecord],
            ) -> Result<(), StoreError> {
                for version in versions {
                    bind_version!(sqlx::query(sql::INSERT_VERSION), version)
                        .execute(&mut **tx)
                        .await
                        .map_err(StoreError::db("inserting a secret version"))?;
                    for stage in &version.stages {
                        Self::upsert_stage(tx, &version.secret_id, stage, version.number, version.create_ms).await?;
                    }
                }
                Ok(())
            }

            async fn with_stages(&self, row: Option<VersionRow>) -> Result<Option<VersionRecord>, StoreError> {
                let Some(row) = row else { return Ok(None) };
                let stages: Vec<String> = sqlx::query_scalar(sql::STAGES_OF_VERSION)
                    .bind(&row.secret_id)
                    .bind(row.version)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("reading version stages"))?;
                row.into_record(stages).map(Some)
            }

            async fn add_count(
                tx: &mut sqlx::Transaction<'static, $db>,
                project_id: &str,
                delta: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::ADD_SECRET_COUNT)
                    .bind(project_id)
                    .bind((rand::random::<u32>() % COUNT_SHARDS) as i32)
                    .bind(delta)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::db("counting secrets"))?;
                Ok(())
            }

            async fn count_secrets(
                tx: &mut sqlx::Transaction<'static, $db>,
                project_id: &str,
            ) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(sql::COUNT_SECRETS)
                    .bind(project_id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(StoreError::db("counting secrets"))?;
                Ok(n as u64)
            }

            async fn commit(tx: sqlx::Transaction<'static, $db>) -> Result<(), StoreError> {
                tx.commit().await.map_err(StoreError::db("committing"))
            }
        }

        #[async_trait]
        impl SecretStore for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::db("pinging the database"))?;
                Ok(())
            }

            async fn create_secret(
                &self,
                secret: &SecretRecord,
                versions: &[VersionRecord],
                quota: u64,
            ) -> Result<(), CreateSecretError> {
                let mut tx = self.begin().await?;
                // Far from the quota, creates need no project lock (see
                // QUOTA_HEADROOM); near it they are serialised per project.
                if Self::count_secrets(&mut tx, &secret.project_id).await? + QUOTA_HEADROOM >= quota {
                    Self::lock_project(&mut tx, &secret.project_id).await?;
                    if Self::count_secrets(&mut tx, &secret.project_id).await? >= quota {
                        return Err(CreateSecretError::QuotaExceeded);
                    }
                }
                let next = versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
                if let Err(e) = bind_secret!(sqlx::query(sql::INSERT_SECRET), secret).bind(next).execute(&mut *tx).await
                {
                    return Err(if common::db::is_unique_violation(&e) {
                        CreateSecretError::NameTaken
                    } else {
                        StoreError::db("inserting a secret")(e).into()
                    });
                }
                Self::insert_versions(&mut tx, versions).await?;
                Self::add_count(&mut tx, &secret.project_id, 1).await?;
                Self::commit(tx).await?;
                Ok(())
            }

            async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError> {
                let row: Option<SecretRow> = sqlx::query_as(&sql::select_secret())
                    .bind(project_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a secret"))?;
                row.map(SecretRecord::try_from).transpose()
            }

            async fn get_secret_by_id(&self, project_id: &str, id: &str) -> Result<Option<SecretRecord>, StoreError> {
                let query = format!("SELECT {} FROM secrets WHERE project_id = $1 AND id = $2", sql::SECRET_COLUMNS);
                let row: Option<SecretRow> = sqlx::query_as(&query)
                    .bind(project_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a secret"))?;
                row.map(SecretRecord::try_from).transpose()
            }

            async fn list_secrets(
                &self,
                project_id: &str,
                after: Option<&str>,
                limit: u32,
                event: Option<&str>,
            ) -> Result<Vec<SecretRecord>, StoreError> {
                // With an event filter the (small, quota-bounded) remainder is
                // filtered here: event names are not LIKE-safe.
                let sql_limit = if event.is_some() { i64::MAX } else { i64::from(limit) };
                let query = format!(
                    "SELECT {} FROM secrets WHERE project_id = $1 AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3",
                    sql::SECRET_COLUMNS
                );
                let rows: Vec<SecretRow> = sqlx::query_as(&query)
                    .bind(project_id)
                    .bind(after)
                    .bind(sql_limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("listing secrets"))?;
                let mut secrets = rows.into_iter().map(SecretRecord::try_from).collect::<Result<Vec<_>, _>>()?;
                if let Some(event) = event {
                    secrets.retain(|s| s.event_subscriptions.iter().any(|e| e == event));
                    secrets.truncate(limit as usize);
                }
                Ok(secrets)
            }

            async fn update_secret(
                &self,
                project_id: &str,
                name: &str,
                change: SecretMutation,
            ) -> Result<SecretRecord, CsmsError> {
                let mut tx = self.begin().await?;
                let mut secret =
                    Self::lock_secret(&mut tx, project_id, "name", name).await?.ok_or(CsmsError::SecretNotFound)?;
                change(&mut secret)?;
                sqlx::query(sql::UPDATE_SECRET)
                    .bind(project_id)
                    .bind(&secret.id)
                    .bind(secret.state.as_str())
                    .bind(&secret.kms_key_id)
                    .bind(&secret.description)
                    .bind(secret.auto_rotation)
                    .bind(&secret.rotation_period)
                    .bind(serde_json::to_string(&secret.event_subscriptions).expect("strings serialise"))
                    .bind(&secret.rotation_func_urn)
                    .bind(secret.update_ms)
                    .bind(secret.scheduled_delete_ms)
                    .bind(secret.next_rotation_ms)
                    .bind(secret.state_before_delete.map(|st| st.as_str()))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("updating a secret"))?;
                Self::commit(tx).await?;
                Ok(secret)
            }

            async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin().await?;
                let deleted = sqlx::query("DELETE FROM secrets WHERE project_id = $1 AND name = $2")
                    .bind(project_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("deleting a secret"))?;
                if deleted.rows_affected() != 1 {
                    return Ok(false);
                }
                Self::add_count(&mut tx, project_id, -1).await?;
                Self::commit(tx).await?;
                Ok(true)
            }

            async fn purge_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
                let due: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM secrets WHERE state = 'PENDING_DELETE' AND scheduled_delete_ms <= $1",
                )
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("finding secrets due for deletion"))?;
                let mut deleted = Vec::new();
                for id in due {
                    let mut tx = self.begin().await?;
                    let gone: Option<String> = sqlx::query_scalar(
                        "DELETE FROM secrets WHERE id = $1 AND state = 'PENDING_DELETE' AND scheduled_delete_ms <= $2 \
                         RETURNING project_id",
                    )
                    .bind(&id)
                    .bind(now_ms)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db("deleting a due secret"))?;
                    if let Some(project_id) = gone {
                        Self::add_count(&mut tx, &project_id, -1).await?;
                        Self::commit(tx).await?;
                        deleted.push(id);
                    }
                }
                Ok(deleted)
            }

            async fn reserve_version(
                &self,
                project_id: &str,
                name: &str,
                check: SecretCheck,
            ) -> Result<(SecretRecord, i32), CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
                let next: i32 = sqlx::query_scalar("SELECT next_version FROM secrets WHERE id = $1")
                    .bind(&secret.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db("reading the next version number"))?;
                sqlx::query("UPDATE secrets SET next_version = $2 WHERE id = $1")
                    .bind(&secret.id)
                    .bind(next + 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("reserving a version number"))?;
                Self::commit(tx).await?;
                Ok((secret, next))
            }

            async fn insert_version(
                &self,
                project_id: &str,
                version: &VersionRecord,
                check: SecretCheck,
            ) -> Result<VersionRecord, CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "id", &version.secret_id, check).await?;
                let current = Self::stages_in(&mut tx, &secret.id).await?;
                let old_current = current.iter().find(|s| s.name == SYSCURRENT).map(|s| s.version);
                let gives_previous = version.stages.iter().any(|s| s == SYSCURRENT)
                    && !version.stages.iter().any(|s| s == SYSPREVIOUS)
                    && old_current.is_some();
                let mut names: std::collections::BTreeSet<&str> = current.iter().map(|s| s.name.as_str()).collect();
                names.extend(version.stages.iter().map(String::as_str));
                if gives_previous {
                    names.insert(SYSPREVIOUS);
                }
                if names.len() > MAX_STAGES {
                    return Err(CsmsError::StageLimit);
                }
                bind_version!(sqlx::query(sql::INSERT_VERSION), version)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("inserting a secret version"))?;
                for stage in &version.stages {
                    Self::upsert_stage(&mut tx, &secret.id, stage, version.number, version.create_ms).await?;
                }
                if let (true, Some(previous)) = (gives_previous, old_current) {
                    Self::upsert_stage(&mut tx, &secret.id, SYSPREVIOUS, previous, version.create_ms).await?;
                }
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions WHERE secret_id = $1")
                    .bind(&secret.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db("counting versions"))?;
                if count as usize > MAX_VERSIONS {
                    let oldest: Option<i32> = sqlx::query_scalar(sql::OLDEST_DEPRECATED)
                        .bind(&secret.id)
                        .bind(version.number)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(StoreError::db("finding a deprecated version"))?;
                    let Some(oldest) = oldest else {
                        return Err(CsmsError::InvalidParameter(format!(
                            "the secret already has {MAX_VERSIONS} versions and every one carries a stage"
                        )));
                    };
                    sqlx::query("DELETE FROM secret_versions WHERE secret_id = $1 AND version = $2")
                        .bind(&secret.id)
                        .bind(oldest)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("deleting a deprecated version"))?;
                }
                sqlx::query("UPDATE secrets SET update_ms = $2 WHERE id = $1")
                    .bind(&secret.id)
                    .bind(version.create_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("touching a secret"))?;
                let stored = Self::version_in(&mut tx, &secret.id, version.number)
                    .await?
                    .ok_or_else(|| CsmsError::Internal("inserted version vanished".into()))?;
                Self::commit(tx).await?;
                Ok(stored)
            }

            async fn read_secret_version(
                &self,
                project_id: &str,
                name: &str,
                stage: Option<&str>,
                number: Option<i32>,
            ) -> Result<Option<(SecretRecord, Option<VersionRecord>)>, StoreError> {
                let row: Option<ReadRow> = sqlx::query_as(&sql::read_secret_version($agg))
                    .bind(project_id)
                    .bind(name)
                    .bind(stage)
                    .bind(number)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a secret value"))?;
                row.map(ReadRow::into_records).transpose()
            }

            async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError> {
                let row: Option<VersionRow> = sqlx::query_as(&sql::select_version())
                    .bind(secret_id)
                    .bind(number)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a secret version"))?;
                self.with_stages(row).await
            }

            async fn get_version_by_stage(
                &self,
                secret_id: &str,
                stage: &str,
            ) -> Result<Option<VersionRecord>, StoreError> {
                let row: Option<VersionRow> = sqlx::query_as(&sql::select_version_by_stage())
                    .bind(secret_id)
                    .bind(stage)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a staged secret version"))?;
                self.with_stages(row).await
            }

            async fn list_versions(
                &self,
                secret_id: &str,
                after: Option<i32>,
                limit: u32,
            ) -> Result<Vec<VersionRecord>, StoreError> {
                let query = format!(
                    "SELECT {} FROM secret_versions v WHERE v.secret_id = $1 AND v.version > $2 \
                     ORDER BY v.version LIMIT $3",
                    sql::VERSION_COLUMNS
                );
                let rows: Vec<VersionRow> = sqlx::query_as(&query)
                    .bind(secret_id)
                    .bind(after.unwrap_or(0))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("listing versions"))?;
                let stages: Vec<(String, i32, i64)> = sqlx::query_as(sql::STAGES_OF_SECRET)
                    .bind(secret_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("reading stages"))?;
                rows.into_iter()
                    .map(|row| {
                        let mine = stages.iter().filter(|s| s.1 == row.version).map(|s| s.0.clone()).collect();
                        row.into_record(mine)
                    })
                    .collect()
            }

            async fn set_version_expiry(
                &self,
                project_id: &str,
                name: &str,
                number: i32,
                expire_ms: Option<i64>,
                check: SecretCheck,
            ) -> Result<VersionRecord, CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
                let updated =
                    sqlx::query("UPDATE secret_versions SET expire_ms = $3 WHERE secret_id = $1 AND version = $2")
                        .bind(&secret.id)
                        .bind(number)
                        .bind(expire_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("updating a version"))?;
                if updated.rows_affected() == 0 {
                    return Err(CsmsError::ResourceNotFound("version"));
                }
                let version = Self::version_in(&mut tx, &secret.id, number)
                    .await?
                    .ok_or(CsmsError::ResourceNotFound("version"))?;
                Self::commit(tx).await?;
                Ok(version)
            }

            async fn get_stage(&self, secret_id: &str, stage: &str) -> Result<Option<StageRecord>, StoreError> {
                let row: Option<(String, i32, i64)> = sqlx::query_as(
                    "SELECT stage_name, version, update_ms FROM secret_stages WHERE secret_id = $1 AND stage_name = $2",
                )
                .bind(secret_id)
                .bind(stage)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading a stage"))?;
                Ok(row.map(|(name, version, update_ms)| StageRecord { name, version, update_ms }))
            }

            async fn set_stage(
                &self,
                project_id: &str,
                name: &str,
                stage: &str,
                number: i32,
                check: SecretCheck,
            ) -> Result<StageRecord, CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
                if Self::version_in(&mut tx, &secret.id, number).await?.is_none() {
                    return Err(CsmsError::ResourceNotFound("version"));
                }
                let current = Self::stages_in(&mut tx, &secret.id).await?;
                let exists = |n: &str| current.iter().any(|s| s.name == n);
                let old_current = current.iter().find(|s| s.name == SYSCURRENT).map(|s| s.version);
                let gives_previous = stage == SYSCURRENT && old_current.is_some_and(|v| v != number);
                let new_names = usize::from(!exists(stage)) + usize::from(gives_previous && !exists(SYSPREVIOUS));
                if current.len() + new_names > MAX_STAGES {
                    return Err(CsmsError::StageLimit);
                }
                let now = common::now_ms();
                Self::upsert_stage(&mut tx, &secret.id, stage, number, now).await?;
                if let (true, Some(previous)) = (gives_previous, old_current) {
                    Self::upsert_stage(&mut tx, &secret.id, SYSPREVIOUS, previous, now).await?;
                }
                Self::commit(tx).await?;
                Ok(StageRecord { name: stage.to_owned(), version: number, update_ms: now })
            }

            async fn delete_stage(
                &self,
                project_id: &str,
                name: &str,
                stage: &str,
                check: SecretCheck,
            ) -> Result<(), CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
                let deleted = sqlx::query("DELETE FROM secret_stages WHERE secret_id = $1 AND stage_name = $2")
                    .bind(&secret.id)
                    .bind(stage)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("deleting a stage"))?;
                if deleted.rows_affected() == 0 {
                    return Err(CsmsError::ResourceNotFound("stage"));
                }
                Self::commit(tx).await?;
                Ok(())
            }

            async fn put_tags(
                &self,
                project_id: &str,
                secret_id: &str,
                tags: &[(String, String)],
                check: SecretCheck,
            ) -> Result<(), CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
                for (key, value) in tags {
                    sqlx::query(sql::UPSERT_TAG)
                        .bind(&secret.id)
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("writing a tag"))?;
                }
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_tags WHERE secret_id = $1")
                    .bind(&secret.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db("counting tags"))?;
                if count as usize > MAX_TAGS {
                    return Err(CsmsError::InvalidParameter(format!("a secret has at most {MAX_TAGS} tags")));
                }
                Self::commit(tx).await?;
                Ok(())
            }

            async fn delete_tags(
                &self,
                project_id: &str,
                secret_id: &str,
                keys: &[String],
                must_exist: bool,
                check: SecretCheck,
            ) -> Result<(), CsmsError> {
                let mut tx = self.begin().await?;
                let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
                for key in keys {
                    let deleted = sqlx::query("DELETE FROM secret_tags WHERE secret_id = $1 AND tag_key = $2")
                        .bind(&secret.id)
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("deleting a tag"))?;
                    if must_exist && deleted.rows_affected() == 0 {
                        return Err(CsmsError::ResourceNotFound("tag"));
                    }
                }
                Self::commit(tx).await?;
                Ok(())
            }

            async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError> {
                sqlx::query_as("SELECT tag_key, tag_value FROM secret_tags WHERE secret_id = $1 ORDER BY tag_key")
                    .bind(secret_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("listing tags"))
            }

            async fn secrets_with_tags(
                &self,
                project_id: &str,
            ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError> {
                let secrets = self.list_secrets(project_id, None, u32::MAX, None).await?;
                let tags: Vec<(String, String, String)> = sqlx::query_as(sql::PROJECT_TAGS)
                    .bind(project_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("listing project tags"))?;
                Ok(secrets
                    .into_iter()
                    .map(|s| {
                        let mine = tags.iter().filter(|t| t.0 == s.id).map(|t| (t.1.clone(), t.2.clone())).collect();
                        (s, mine)
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use impl_secret_store;
