//! Persistence of master keys behind one trait ([`KeyStore`]), its own
//! errors, and what it stores. The implementation is written once, in
//! [`sql`], generic over a small [`sql::Dialect`]; the sibling [`postgres`]
//! and [`sqlite`] modules supply what differs (migrations, locking, the
//! change feed). The conformance suite in `conformance` runs against both.
//!
//! The store knows the domain's types and passes a [`Rejection`] from a
//! [`KeyMutation`] back unchanged; it never builds the service's error.

use async_trait::async_trait;

use crate::domain::{KeyId, KeyRecord, KeySpec, KeyState, Rejection};

pub mod postgres;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use common::db::StoreError;

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
    Rejected(Rejection),
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
pub type KeyMutation = Box<dyn FnOnce(&mut KeyRecord) -> Result<(), Rejection> + Send>;

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
pub trait KeyStore: common::db::Schema + std::fmt::Debug + 'static {
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

/// Shards per key count (see the key_counts migration).
pub const COUNT_SHARDS: i32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many keys of its quota. Far from the quota, concurrent creates run in
/// parallel; the quota stays exact as long as fewer creates than this are
/// in flight at once across all replicas (each replica has at most its
/// pool size in flight: 16 by default).
pub const QUOTA_HEADROOM: u64 = 1024;

/// Channel of key-change notifications on Postgres.
pub const CHANGE_CHANNEL: &str = "opendew_kms_keys";
