//! Persistence of master keys behind [`KeyStore`]: one trait per resource
//! ([`Keys`], [`Materials`], [`Aliases`], [`Grants`], [`Tags`]), the
//! store's own errors, and what it stores. The implementation is written once, in
//! [`sql`], generic over a small [`sql::Dialect`]; the sibling [`postgres`]
//! and [`sqlite`] modules supply what differs (migrations, locking, the
//! change feed). The conformance suite in `conformance` runs against both.
//!
//! The store knows the domain's types and passes a [`Rejection`] from a
//! [`KeyMutation`] back unchanged; it never builds the service's error.

use async_trait::async_trait;

use crate::domain::{GrantRecord, KeyId, KeyRecord, KeySpec, KeyState, Rejection};

pub mod postgres;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use common::db::StoreError;

/// Why [`Keys::create_key`] refused.
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

/// Why [`Keys::update_key`] refused.
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

/// Makes fresh root-key-wrapped material for the record's new
/// `material_version`: called by [`Materials::rotate_key`] inside its
/// transaction, once the transition succeeded.
pub type WrapMaterial = Box<dyn FnOnce(&KeyRecord) -> Result<Vec<u8>, Rejection> + Send>;

/// An alias of the alias API as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// `alias/…`.
    pub alias: String,
    /// The key it names.
    pub key_id: KeyId,
    /// Created, ms.
    pub create_ms: i64,
    /// Last pointed at a key, ms.
    pub update_ms: i64,
}

/// A tag: key and value.
pub type Tag = common::tags::Tag;

/// How many grants a key, and a project, may have.
#[derive(Debug, Clone, Copy)]
pub struct GrantLimits {
    /// Grants per key.
    pub per_key: usize,
    /// Grants over all keys of a project.
    pub per_project: usize,
}

/// What another replica changed, as seen by [`Keys::watch`].
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

/// Filters of [`Keys::list_keys`].
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only this state.
    pub state: Option<KeyState>,
    /// Only this spec (`None` = every spec).
    pub spec: Option<KeySpec>,
}

/// Storage of master keys and what belongs to them: one trait per
/// resource, as in csms-service's store. Code that holds a
/// `dyn KeyStore` imports the resource traits it calls.
pub trait KeyStore: Keys + Materials + Aliases + Grants + Tags {}

impl<T: Keys + Materials + Aliases + Grants + Tags> KeyStore for T {}

/// Master keys: their records, lifecycle and the change feed.
#[async_trait]
pub trait Keys: common::db::Schema + std::fmt::Debug + 'static {
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
        &self, project_id: &str, filter: &KeyFilter, offset: u64, limit: u32,
    ) -> Result<(Vec<KeyRecord>, u64), StoreError>;

    /// Applies `change` to a key in one transaction with the row locked,
    /// and tells other replicas (see [`Keys::watch`]) after commit.
    async fn update_key(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation,
    ) -> Result<KeyRecord, UpdateKeyError>;

    /// A key by id, whatever its project (the grant check decides whether
    /// the caller may see it).
    async fn get_key_any(&self, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError>;

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

/// Key material versions: rotation, and the expiry of imported material.
#[async_trait]
pub trait Materials: Send + Sync + std::fmt::Debug + 'static {
    /// Wrapped material of every version of a key.
    async fn materials(&self, key_id: KeyId) -> Result<Vec<(i32, Vec<u8>)>, StoreError>;

    /// As [`Keys::update_key`], for a change that may move the key to a
    /// new material version: that version's material, made by `wrap`, is
    /// inserted in the same transaction.
    async fn rotate_key(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation, wrap: WrapMaterial,
    ) -> Result<KeyRecord, UpdateKeyError>;

    /// (version, creation time in ms) of every material version of a key.
    async fn material_versions(&self, key_id: KeyId) -> Result<Vec<(i32, i64)>, StoreError>;

    /// Up to `limit` (project, key) pairs of enabled keys whose automatic
    /// rotation was due at `now_ms`, with days of `day_ms` milliseconds,
    /// oldest period first.
    async fn due_rotations(&self, now_ms: i64, day_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError>;

    /// Up to `limit` (project, key) pairs of enabled or disabled keys whose
    /// imported material expired at `now_ms`.
    async fn expired_imports(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError>;
}

/// The alias API's aliases.
#[async_trait]
pub trait Aliases: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `alias` for a key of the project that is not pending
    /// deletion (`Rejected` otherwise) and has fewer than `max_per_key`
    /// aliases. A name already in use is `AliasTaken`.
    async fn create_alias(
        &self, project_id: &str, alias: &str, key_id: KeyId, now_ms: i64, max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError>;

    /// Moves an existing alias to another key of the project, on the same
    /// conditions as [`Aliases::create_alias`].
    async fn associate_alias(
        &self, project_id: &str, alias: &str, key_id: KeyId, now_ms: i64, max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError>;

    /// Deletes aliases of `key_id`; each must exist and name that key, or
    /// nothing is deleted.
    async fn delete_aliases(&self, project_id: &str, key_id: KeyId, aliases: &[String]) -> Result<(), UpdateKeyError>;

    /// One alias of the project.
    async fn find_alias(&self, project_id: &str, alias: &str) -> Result<Option<AliasRecord>, StoreError>;

    /// Up to `limit` aliases of the project (of one key, if given), by
    /// name, after `after`.
    async fn list_aliases(
        &self, project_id: &str, key_id: Option<KeyId>, after: &str, limit: u32,
    ) -> Result<Vec<AliasRecord>, StoreError>;
}

/// Key tags.
#[async_trait]
pub trait Tags: Send + Sync + std::fmt::Debug + 'static {
    /// Sets tags on a key of the project (see [`common::tags::sql::put`]).
    async fn put_tags(&self, project_id: &str, key_id: KeyId, tags: &[Tag], max: usize) -> Result<(), UpdateKeyError>;

    /// Removes tag keys of a key of the project; with `must_exist`, each
    /// must be there.
    async fn delete_tags(
        &self, project_id: &str, key_id: KeyId, keys: &[String], must_exist: bool,
    ) -> Result<(), UpdateKeyError>;

    /// A key's tags, by tag key.
    async fn tags(&self, key_id: KeyId) -> Result<Vec<Tag>, StoreError>;

    /// Every key of the project, oldest first, with its tags.
    async fn keys_with_tags(&self, project_id: &str) -> Result<Vec<(KeyRecord, Vec<Tag>)>, StoreError>;
}

/// Grants on keys.
#[async_trait]
pub trait Grants: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts a grant on its key, locked: `check` may refuse the key's
    /// state; a key with `limits.per_key` grants refuses with `GrantQuota`,
    /// a project with `limits.per_project` with `GrantProjectQuota`. Tells
    /// every replica, as a change to the key does.
    async fn create_grant(
        &self, grant: &GrantRecord, check: KeyMutation, limits: GrantLimits,
    ) -> Result<(), UpdateKeyError>;

    /// A key's grants, oldest first.
    async fn grants_of(&self, key_id: KeyId) -> Result<Vec<GrantRecord>, StoreError>;

    /// One grant by id.
    async fn find_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError>;

    /// Deletes a grant (false when it was not there) and tells every
    /// replica.
    async fn delete_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError>;

    /// A page of the grants `retiring` may retire as their retiring
    /// principal, oldest first, and how many there are.
    async fn retirable_grants(
        &self, retiring: &[&str], offset: u64, limit: u32,
    ) -> Result<(Vec<GrantRecord>, u64), StoreError>;
}

/// Shards per key count (see the key_counts migration).
pub const COUNT_SHARDS: i32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many keys of its quota. Far from the quota, concurrent creates run in
/// parallel; the quota stays exact as long as fewer creates than this are
/// in flight at once across all replicas (each replica has at most its
/// pool size in flight, 16 by default, plus on Postgres 96 in grouped
/// statements).
pub const QUOTA_HEADROOM: u64 = 1024;

/// Channel of key-change notifications on Postgres.
pub const CHANGE_CHANNEL: &str = "opendew_kms_keys";
