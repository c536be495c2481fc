//! Persistence of secrets behind [`SecretStore`]: one trait per resource
//! ([`Secrets`], [`Versions`] with their stages, [`Tags`]) and the store's
//! own errors. The implementation is written once, in [`sql`], generic over
//! a small [`sql::Dialect`]; the sibling [`postgres`] and [`sqlite`] modules
//! supply what differs. The conformance suite in `conformance` runs
//! against both.
//!
//! The store knows the domain's types and passes a [`Rejection`] from a
//! [`SecretCheck`] or [`SecretMutation`] back unchanged; it never builds
//! the service's error.

use async_trait::async_trait;

#[allow(unused_imports)] // named in the docs
use crate::domain::{MAX_TAGS, MAX_VERSIONS};
use crate::domain::{Rejection, SecretRecord, VersionRecord};

pub mod postgres;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use common::db::StoreError;

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

/// Why a write that checks the secret's state refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A rule refused it: the secret's state, a missing version or stage,
    /// a limit on stages, versions or tags.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change to a secret's metadata or state, applied to the current row
/// under a lock; an error leaves the row unchanged.
pub type SecretMutation = Box<dyn FnOnce(&mut SecretRecord) -> Result<(), Rejection> + Send>;

/// A check of a secret's current state before a write.
pub type SecretCheck = Box<dyn FnOnce(&SecretRecord) -> Result<(), Rejection> + Send>;

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
pub trait SecretStore: Secrets + Versions + Tags {}

impl<T: Secrets + Versions + Tags> SecretStore for T {}

/// Secrets: their metadata and lifecycle.
#[async_trait]
pub trait Secrets: common::db::Schema + std::fmt::Debug + 'static {
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
    ) -> Result<SecretRecord, WriteError>;

    /// Deletes a secret with its versions, stages and tags. False when absent.
    async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError>;

    /// Deletes the secrets whose scheduled deletion time is at or before
    /// `now_ms`; returns their ids. Safe on several replicas at once.
    async fn purge_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;
}

/// Versions and the stages that point at them.
#[async_trait]
pub trait Versions: Send + Sync + std::fmt::Debug + 'static {
    /// Reserves the next version number of a secret after `check` passed.
    async fn reserve_version(
        &self,
        project_id: &str,
        name: &str,
        check: SecretCheck,
    ) -> Result<(SecretRecord, i32), WriteError>;

    /// Inserts a sealed version and moves its stages onto it, in one
    /// transaction: `version.stages` are moved from whichever version held
    /// them; if SYSCURRENT moves, the version that held it gets SYSPREVIOUS.
    /// Beyond [`MAX_VERSIONS`] the oldest version without stages is deleted.
    async fn insert_version(
        &self,
        project_id: &str,
        version: &VersionRecord,
        check: SecretCheck,
    ) -> Result<VersionRecord, WriteError>;

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
    ) -> Result<VersionRecord, WriteError>;

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
    ) -> Result<StageRecord, WriteError>;

    /// Removes a custom stage.
    async fn delete_stage(
        &self,
        project_id: &str,
        name: &str,
        stage: &str,
        check: SecretCheck,
    ) -> Result<(), WriteError>;
}

/// Tags of secrets.
#[async_trait]
pub trait Tags: Send + Sync + std::fmt::Debug + 'static {
    /// Upserts tags (one value per key), keeping at most [`MAX_TAGS`].
    async fn put_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        tags: &[(String, String)],
        check: SecretCheck,
    ) -> Result<(), WriteError>;

    /// Removes tags by key; absent keys are ignored unless `must_exist`.
    async fn delete_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        keys: &[String],
        must_exist: bool,
        check: SecretCheck,
    ) -> Result<(), WriteError>;

    /// Tags of one secret, by key.
    async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Every secret of a project with its tags, by name.
    async fn secrets_with_tags(
        &self,
        project_id: &str,
    ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError>;
}

/// Shards per secret count (see the secret_counts migration).
pub const COUNT_SHARDS: u32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many secrets of its quota; the quota stays exact as long as fewer creates
/// than this are in flight at once across all replicas.
pub const QUOTA_HEADROOM: u64 = 1024;
