//! Persistence of master keys behind one trait, with sibling Postgres and
//! SQLite implementations that share their SQL text (both accept `$n`
//! placeholders) and differ only where the dialects do: DDL and locking.
//!
//! The conformance suite in [`conformance`] runs against both.

use async_trait::async_trait;

use crate::domain::{KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage};

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
    #[error("corrupt key row {0}")]
    Corrupt(String),
    /// Migrations failed at start.
    #[error("migrating the kms schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }
}

/// Why [`KeyStore::create_key`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    /// The project already has a key with this alias.
    #[error("alias already in use")]
    AliasTaken,
    /// The project's quota of (non-default) keys is used up.
    #[error("key quota reached")]
    QuotaExceeded,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`KeyStore::update_key`] refused.
#[derive(Debug, thiserror::Error)]
pub enum UpdateKeyError {
    /// No such key in the project.
    #[error("key not found")]
    NotFound,
    /// The mutation refused the key's current state.
    #[error(transparent)]
    Rejected(crate::error::KmsError),
    /// The new alias is taken in the project.
    #[error("alias already in use")]
    AliasTaken,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change to a key's mutable fields (alias, description, state,
/// deletion date), applied to the current row under a lock. Returning an
/// error leaves the row unchanged.
pub type KeyMutation = Box<dyn FnOnce(&mut KeyRecord) -> Result<(), crate::error::KmsError> + Send>;

/// What another replica changed, as seen by [`KeyStore::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    /// One key changed or was deleted.
    Key(KeyId),
    /// Changes may have been missed (feed reconnecting): forget everything.
    /// `healthy` tells whether the feed is delivering again.
    Reset {
        /// The feed is connected and delivering.
        healthy: bool,
    },
}

/// Receives change events.
pub type ChangeSink = std::sync::Arc<dyn Fn(ChangeEvent) + Send + Sync>;

/// A key to insert together with its first wrapped material version.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The metadata; `material_version` must be `Some(1)` iff `material` is.
    pub record: KeyRecord,
    /// Root-key-wrapped material of version 1, if generated.
    pub wrapped_material: Option<Vec<u8>>,
}

/// Filters of [`KeyStore::list_keys`].
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only this state.
    pub state: Option<KeyState>,
    /// Only this spec (`None` = every spec).
    pub spec: Option<KeySpec>,
}

/// Storage of master keys and their wrapped material.
#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Records the root-key fingerprint if none is stored yet and returns
    /// the stored one (which differs from `fingerprint` when the database
    /// was written under another root key).
    async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError>;

    /// Inserts a key and its material in one transaction. Alias uniqueness
    /// is enforced by a constraint; `quota` (if any) counts the project's
    /// non-default keys under a per-project lock.
    async fn create_key(&self, key: NewKey, quota: Option<u64>) -> Result<KeyRecord, CreateKeyError>;

    /// One key of a project.
    async fn get_key(&self, project_id: &str, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// One key of a project by alias.
    async fn find_by_alias(&self, project_id: &str, alias: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// A page of a project's keys, oldest first, and the filtered total.
    async fn list_keys(
        &self,
        project_id: &str,
        filter: &KeyFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<KeyRecord>, u64), StoreError>;

    /// Wrapped material of every version of a key.
    async fn materials(&self, key_id: KeyId) -> Result<Vec<(i32, Vec<u8>)>, StoreError>;

    /// Applies `change` to a key in one transaction with the row locked,
    /// and tells other replicas (see [`KeyStore::watch`]) after commit.
    async fn update_key(
        &self,
        project_id: &str,
        key_id: KeyId,
        change: KeyMutation,
    ) -> Result<KeyRecord, UpdateKeyError>;

    /// Number of user (non-default) keys of a project, in every state.
    async fn count_user_keys(&self, project_id: &str) -> Result<u64, StoreError>;

    /// Deletes, with their material, the keys whose scheduled deletion date
    /// is at or before `now_ms`; returns them. Safe to run on several
    /// replicas at once.
    async fn purge_due(&self, now_ms: i64) -> Result<Vec<KeyId>, StoreError>;

    /// Starts delivering other processes' key changes to `sink` until
    /// `shutdown`. Returns false when the backend has no such feed (SQLite:
    /// one process owns the file, so local invalidation is complete).
    async fn watch(&self, sink: ChangeSink, shutdown: tokio_util::sync::CancellationToken) -> Result<bool, StoreError>;

    /// How many database round trips this store has made: the hot-path
    /// test asserts it stays flat.
    fn round_trips(&self) -> u64;
}

/// Adjusts a key count inside a transaction; shared by both backends.
macro_rules! add_count {
    ($tx:expr, $project:expr, $spec:expr, $state:expr, $default:expr, $delta:expr) => {
        sqlx::query(sql::ADD_COUNT)
            .bind($project)
            .bind($spec.as_str())
            .bind($state as i32)
            .bind($default)
            .bind((rand::random::<u32>() % $crate::store::COUNT_SHARDS as u32) as i32)
            .bind($delta as i64)
            .execute(&mut *$tx)
            .await
            .map_err(StoreError::db("counting keys"))
    };
}
pub(crate) use add_count;

/// Shards per key count (see the key_counts migration).
pub const COUNT_SHARDS: i32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many keys of its quota. Far from the quota, concurrent creates run in
/// parallel; the quota stays exact as long as fewer creates than this are
/// in flight at once across all replicas (each replica has at most its
/// pool size in flight: 16 by default).
pub const QUOTA_HEADROOM: u64 = 1024;

/// Counts round trips; shared by both backends.
#[derive(Debug, Default)]
pub(crate) struct RoundTrips(std::sync::atomic::AtomicU64);

impl RoundTrips {
    pub(crate) fn tick(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Channel of key-change notifications on Postgres.
pub const CHANGE_CHANNEL: &str = "opendew_kms_keys";

/// SQL shared by both backends.
pub(crate) mod sql {
    pub const KEY_COLUMNS: &str = "key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, \
        origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version";

    pub const INSERT_KEY: &str = "INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, \
        key_spec, key_usage, origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

    pub const INSERT_MATERIAL: &str =
        "INSERT INTO key_materials (key_id, version, wrapped, created_ms) VALUES ($1, $2, $3, $4)";

    pub const ENSURE_PROJECT: &str = "INSERT INTO kms_projects (project_id) VALUES ($1) ON CONFLICT DO NOTHING";

    pub const COUNT_USER_KEYS: &str =
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM key_counts WHERE project_id = $1 AND NOT default_key";

    /// Adds `$6` to shard `$5` of the count of (project, spec, state, default).
    pub const ADD_COUNT: &str = "INSERT INTO key_counts (project_id, key_spec, key_state, default_key, shard, n) \
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, key_spec, key_state, default_key, shard) \
        DO UPDATE SET n = key_counts.n + excluded.n";

    pub const CLAIM_FINGERPRINT: &str =
        "INSERT INTO kms_meta (name, value) VALUES ('root_key_fingerprint', $1) ON CONFLICT DO NOTHING";

    pub const READ_FINGERPRINT: &str = "SELECT value FROM kms_meta WHERE name = 'root_key_fingerprint'";

    pub const SELECT_MATERIALS: &str = "SELECT version, wrapped FROM key_materials WHERE key_id = $1 ORDER BY version";

    pub const UPDATE_KEY: &str = "UPDATE keys SET key_alias = $3, key_description = $4, key_state = $5, \
        scheduled_deletion_ms = $6 WHERE project_id = $1 AND key_id = $2";

    /// Keys due for deletion; `$1` is now in ms. (State 4 = pending deletion.)
    pub const DUE_KEYS: &str = "SELECT key_id FROM keys WHERE key_state = 4 AND scheduled_deletion_ms <= $1";

    pub const DELETE_MATERIALS: &str = "DELETE FROM key_materials WHERE key_id = $1";

    pub const DELETE_DUE_KEY: &str = "DELETE FROM keys WHERE key_id = $1 AND key_state = 4 \
        AND scheduled_deletion_ms <= $2 RETURNING project_id, key_spec, default_key";

    /// `WHERE` clause of list queries: `$2` state filter, `$3` spec filter,
    /// each NULL for "any".
    pub const LIST_WHERE: &str = "WHERE project_id = $1 AND ($2 IS NULL OR key_state = $2) \
        AND ($3 IS NULL OR key_spec = $3)";

    pub fn select_one(by: &str) -> String {
        format!("SELECT {KEY_COLUMNS} FROM keys WHERE project_id = $1 AND {by} = $2")
    }

    pub fn list_page() -> String {
        format!("SELECT {KEY_COLUMNS} FROM keys {LIST_WHERE} ORDER BY creation_ms, key_id LIMIT $4 OFFSET $5")
    }

    pub fn list_count() -> String {
        format!("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM key_counts {LIST_WHERE}")
    }
}

/// A `keys` row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeyRow {
    key_id: String,
    project_id: String,
    domain_id: String,
    key_alias: String,
    key_description: String,
    key_spec: String,
    key_usage: String,
    origin: String,
    key_state: i32,
    default_key: bool,
    enterprise_project_id: String,
    rotation_enabled: bool,
    creation_ms: i64,
    scheduled_deletion_ms: Option<i64>,
    expiration_ms: Option<i64>,
    material_version: Option<i32>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(row.key_id.clone());
        Ok(KeyRecord {
            key_id: KeyId(uuid::Uuid::parse_str(&row.key_id).map_err(|_| corrupt())?),
            spec: KeySpec::parse(&row.key_spec).ok_or_else(corrupt)?,
            usage: KeyUsage::parse(&row.key_usage).ok_or_else(corrupt)?,
            origin: KeyOrigin::parse(&row.origin).ok_or_else(corrupt)?,
            state: KeyState::from_i32(row.key_state).ok_or_else(corrupt)?,
            project_id: row.project_id,
            domain_id: row.domain_id,
            alias: row.key_alias,
            description: row.key_description,
            default_key: row.default_key,
            enterprise_project_id: row.enterprise_project_id,
            rotation_enabled: row.rotation_enabled,
            creation_ms: row.creation_ms,
            scheduled_deletion_ms: row.scheduled_deletion_ms,
            expiration_ms: row.expiration_ms,
            material_version: row.material_version,
        })
    }
}

/// Binds a [`KeyRecord`] to [`sql::INSERT_KEY`], for either backend.
macro_rules! bind_key {
    ($query:expr, $r:expr) => {
        $query
            .bind($r.key_id.to_string())
            .bind(&$r.project_id)
            .bind(&$r.domain_id)
            .bind(&$r.alias)
            .bind(&$r.description)
            .bind($r.spec.as_str())
            .bind($r.usage.as_str())
            .bind($r.origin.as_str())
            .bind($r.state as i32)
            .bind($r.default_key)
            .bind(&$r.enterprise_project_id)
            .bind($r.rotation_enabled)
            .bind($r.creation_ms)
            .bind($r.scheduled_deletion_ms)
            .bind($r.expiration_ms)
            .bind($r.material_version)
    };
}
pub(crate) use bind_key;
