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

    /// One trivial statement: is the database reachable? Health checks use
    /// it (kms-service does not count it as a round trip of the hot path).
    async fn ping(&self) -> Result<(), StoreError>;

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
        metrics::counter!("opendew_kms_db_round_trips_total").increment(1);
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

/// Implements [`KeyStore`] for a backend. The sibling modules instantiate it
/// with their database type, migrations and row-lock clause (`FOR UPDATE` on
/// Postgres; nothing on SQLite, whose `BEGIN IMMEDIATE` serialises writers)
/// and provide what differs: `begin`, `lock_project`, `notify` and
/// `watch_changes`. The SQL text is shared.
macro_rules! impl_key_store {
    ($store:ty, $db:ty, $migrations:literal, $lock:literal) => {
        impl $store {
            async fn count_in(tx: &mut sqlx::Transaction<'static, $db>, project_id: &str) -> Result<i64, StoreError> {
                sqlx::query_scalar(sql::COUNT_USER_KEYS)
                    .bind(project_id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(StoreError::db("counting keys"))
            }
        }

        #[async_trait]
        impl KeyStore for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::db("pinging the database"))?;
                Ok(())
            }

            async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
                self.round_trips.tick();
                sqlx::query(sql::CLAIM_FINGERPRINT)
                    .bind(fingerprint)
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::db("storing the root key fingerprint"))?;
                sqlx::query_scalar(sql::READ_FINGERPRINT)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::db("reading the root key fingerprint"))
            }

            async fn create_key(&self, key: NewKey, quota: Option<u64>) -> Result<KeyRecord, CreateKeyError> {
                self.round_trips.tick();
                let r = &key.record;
                let mut tx = self.begin().await?;
                if let Some(quota) = quota {
                    let unlocked = Self::count_in(&mut tx, &r.project_id).await? as u64;
                    if unlocked + QUOTA_HEADROOM >= quota {
                        // Near the quota: serialise this project's creators, so two
                        // concurrent creates cannot both see "quota - 1" keys.
                        Self::lock_project(&mut tx, &r.project_id).await?;
                        if Self::count_in(&mut tx, &r.project_id).await? as u64 >= quota {
                            return Err(CreateKeyError::QuotaExceeded);
                        }
                    }
                }
                if let Err(e) = bind_key!(sqlx::query(sql::INSERT_KEY), r).execute(&mut *tx).await {
                    return Err(if common::db::is_unique_violation(&e) {
                        CreateKeyError::AliasTaken
                    } else {
                        StoreError::db("inserting a key")(e).into()
                    });
                }
                if let Some(wrapped) = &key.wrapped_material {
                    sqlx::query(sql::INSERT_MATERIAL)
                        .bind(r.key_id.to_string())
                        .bind(1_i32)
                        .bind(wrapped)
                        .bind(r.creation_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("inserting key material"))?;
                }
                add_count!(tx, &r.project_id, r.spec, r.state, r.default_key, 1)?;
                tx.commit().await.map_err(StoreError::db("committing a new key"))?;
                Ok(key.record)
            }

            async fn get_key(&self, project_id: &str, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
                self.round_trips.tick();
                let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_id"))
                    .bind(project_id)
                    .bind(key_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a key"))?;
                row.map(KeyRecord::try_from).transpose()
            }

            async fn find_by_alias(&self, project_id: &str, alias: &str) -> Result<Option<KeyRecord>, StoreError> {
                self.round_trips.tick();
                let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_alias"))
                    .bind(project_id)
                    .bind(alias)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::db("reading a key by alias"))?;
                row.map(KeyRecord::try_from).transpose()
            }

            async fn list_keys(
                &self,
                project_id: &str,
                filter: &KeyFilter,
                offset: u64,
                limit: u32,
            ) -> Result<(Vec<KeyRecord>, u64), StoreError> {
                self.round_trips.tick();
                let state = filter.state.map(|s| s as i32);
                let spec = filter.spec.map(|s| s.as_str());
                let rows: Vec<KeyRow> = sqlx::query_as(&sql::list_page())
                    .bind(project_id)
                    .bind(state)
                    .bind(spec)
                    .bind(i64::from(limit))
                    .bind(offset as i64)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("listing keys"))?;
                let total: i64 = sqlx::query_scalar(&sql::list_count())
                    .bind(project_id)
                    .bind(state)
                    .bind(spec)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::db("counting keys"))?;
                let keys = rows.into_iter().map(KeyRecord::try_from).collect::<Result<_, _>>()?;
                Ok((keys, total as u64))
            }

            async fn materials(&self, key_id: KeyId) -> Result<Vec<(i32, Vec<u8>)>, StoreError> {
                self.round_trips.tick();
                sqlx::query_as(sql::SELECT_MATERIALS)
                    .bind(key_id.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("reading key material"))
            }

            async fn update_key(
                &self,
                project_id: &str,
                key_id: KeyId,
                change: KeyMutation,
            ) -> Result<KeyRecord, UpdateKeyError> {
                self.round_trips.tick();
                let mut tx = self.begin().await?;
                let row: Option<KeyRow> = sqlx::query_as(&format!("{}{}", sql::select_one("key_id"), $lock))
                    .bind(project_id)
                    .bind(key_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db("locking a key"))?;
                let mut key = KeyRecord::try_from(row.ok_or(UpdateKeyError::NotFound)?)?;
                let old_state = key.state;
                change(&mut key).map_err(UpdateKeyError::Rejected)?;
                if key.state != old_state {
                    add_count!(tx, project_id, key.spec, old_state, key.default_key, -1)?;
                    add_count!(tx, project_id, key.spec, key.state, key.default_key, 1)?;
                }
                let updated = sqlx::query(sql::UPDATE_KEY)
                    .bind(project_id)
                    .bind(key_id.to_string())
                    .bind(&key.alias)
                    .bind(&key.description)
                    .bind(key.state as i32)
                    .bind(key.scheduled_deletion_ms)
                    .execute(&mut *tx)
                    .await;
                if let Err(e) = updated {
                    return Err(if common::db::is_unique_violation(&e) {
                        UpdateKeyError::AliasTaken
                    } else {
                        StoreError::db("updating a key")(e).into()
                    });
                }
                Self::notify(&mut tx, &key_id.to_string()).await?;
                tx.commit().await.map_err(StoreError::db("committing a key change"))?;
                Ok(key)
            }

            async fn count_user_keys(&self, project_id: &str) -> Result<u64, StoreError> {
                self.round_trips.tick();
                let n: i64 = sqlx::query_scalar(sql::COUNT_USER_KEYS)
                    .bind(project_id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::db("counting keys"))?;
                Ok(n as u64)
            }

            async fn purge_due(&self, now_ms: i64) -> Result<Vec<KeyId>, StoreError> {
                self.round_trips.tick();
                let due: Vec<String> = sqlx::query_scalar(sql::DUE_KEYS)
                    .bind(now_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::db("finding keys due for deletion"))?;
                let mut deleted = Vec::new();
                for id in due {
                    // One short transaction per key; a replica that loses the race
                    // deletes nothing and moves on.
                    let mut tx = self.begin().await?;
                    sqlx::query(sql::DELETE_MATERIALS)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db("destroying key material"))?;
                    let gone: Option<(String, String, bool)> = sqlx::query_as(sql::DELETE_DUE_KEY)
                        .bind(&id)
                        .bind(now_ms)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(StoreError::db("deleting a key"))?;
                    if let Some((project_id, spec, default_key)) = gone {
                        let spec =
                            crate::domain::KeySpec::parse(&spec).ok_or_else(|| StoreError::Corrupt(id.clone()))?;
                        add_count!(tx, &project_id, spec, crate::domain::KeyState::PendingDeletion, default_key, -1)?;
                        Self::notify(&mut tx, &id).await?;
                        tx.commit().await.map_err(StoreError::db("committing a key deletion"))?;
                        if let Ok(uuid) = uuid::Uuid::parse_str(&id) {
                            deleted.push(KeyId(uuid));
                        }
                    } else {
                        tx.rollback().await.map_err(StoreError::db("rolling back"))?;
                    }
                }
                Ok(deleted)
            }

            async fn watch(&self, sink: ChangeSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
                self.watch_changes(sink, shutdown).await
            }

            fn round_trips(&self) -> u64 {
                self.round_trips.get()
            }
        }
    };
}
pub(crate) use impl_key_store;
