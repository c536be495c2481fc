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
use crate::domain::{
    Rejection, SecretRecord, VersionRecord,
    events::{EventRecord, Notice, NotificationRecord, TaskFilter, TaskRecord},
    grants::GrantRecord,
    instances::InstanceRecord,
};

pub mod postgres;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use common::db::StoreError;

/// Why `SecretStore::create_secret` refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateSecretError {
    /// The project already has a secret with this name.
    #[error("name already in use")]
    NameTaken,
    /// The project's secret quota is used up.
    #[error("secret quota reached")]
    QuotaExceeded,
    /// A rule refused it (the subscribed event does not exist).
    #[error(transparent)]
    Rejected(#[from] Rejection),
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

/// A change to an event, applied to the current row under a lock.
pub type EventMutation = Box<dyn FnOnce(&mut EventRecord) -> Result<(), Rejection> + Send>;

/// What a write records besides its own change, in the same transaction:
/// the firings of the secret's event (each leaves a notification record
/// when the secret subscribes to an enabled event of that type) and a
/// rotation task.
#[derive(Debug, Default)]
pub struct Effects {
    /// Firings.
    pub notices: Vec<Notice>,
    /// A rotation attempt.
    pub task: Option<TaskRecord>,
}

impl Effects {
    /// Only firings.
    pub fn notices(notices: impl IntoIterator<Item = Notice>) -> Self {
        Self { notices: notices.into_iter().collect(), task: None }
    }
}

/// How a delivery attempt of a notification record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The sink took it: `SUCCESS`.
    Delivered,
    /// Try again at this time (ms).
    Retry { at_ms: i64, error: String },
    /// Give up: `FAIL`.
    Failed { error: String },
}

/// How [`Events::create_event`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventInsert {
    /// Stored.
    Created,
    /// The project already has an event of that name.
    NameTaken,
    /// The project has its quota of events.
    QuotaReached,
}

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
pub trait SecretStore: Secrets + Versions + Tags + Events + Tasks + Grants + Instances {}

impl<T: Secrets + Versions + Tags + Events + Tasks + Grants + Instances> SecretStore for T {}

/// The Postgres channel of secret changes; the payload is the secret's id.
pub const CHANGE_CHANNEL: &str = "opendew_csms_secrets";

/// Secrets: their metadata and lifecycle.
#[async_trait]
pub trait Secrets: common::db::Schema + std::fmt::Debug + 'static {
    /// Starts telling `sink` of every committed write that changes what a
    /// read of a secret returns (its row, a version's value or expiry, a
    /// stage, its deletion), by the secret's id: this process's writes right
    /// after they commit, and on Postgres every replica's through
    /// `LISTEN`/`NOTIFY` (with `Reset` while that feed is down). False when
    /// there is no cross-process feed (SQLite, one process). Once per store.
    async fn watch(
        &self, sink: common::db::FeedSink, shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<bool, StoreError>;

    /// Inserts a secret and its versions (each with its stages) in one
    /// transaction, with the firings of `effects`. Name uniqueness is a
    /// constraint; `quota` counts the project's secrets under a
    /// per-project lock. The secret's event subscription must name an
    /// existing event.
    async fn create_secret(
        &self, secret: &SecretRecord, versions: &[VersionRecord], quota: u64, effects: &Effects,
    ) -> Result<(), CreateSecretError>;

    /// One secret of a project by name.
    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// One secret of a project by id.
    async fn get_secret_by_id(&self, project_id: &str, id: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// Up to `limit` secrets by name, after `after`; only those subscribed
    /// to `event` when given.
    async fn list_secrets(
        &self, project_id: &str, after: Option<&str>, limit: u32, event: Option<&str>,
    ) -> Result<Vec<SecretRecord>, StoreError>;

    /// Applies `change` to a secret under its row lock; a subscription it
    /// sets must name an existing event (locked against its deletion).
    async fn update_secret(
        &self, project_id: &str, name: &str, change: SecretMutation,
    ) -> Result<SecretRecord, WriteError>;

    /// Deletes a secret with its versions, stages and tags, firing
    /// `SECRET_DELETED`. False when absent.
    async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError>;

    /// Deletes the secrets whose scheduled deletion time is at or before
    /// `now_ms`, firing `SECRET_DELETED` for each; returns their ids. Safe
    /// on several replicas at once.
    async fn purge_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;
}

/// Versions and the stages that point at them.
#[async_trait]
pub trait Versions: Send + Sync + std::fmt::Debug + 'static {
    /// Reserves the next version number of a secret after `check` passed.
    async fn reserve_version(
        &self, project_id: &str, name: &str, check: SecretCheck,
    ) -> Result<(SecretRecord, i32), WriteError>;

    /// Inserts a sealed version and moves its stages onto it, in one
    /// transaction: `version.stages` are moved from whichever version held
    /// them; if SYSCURRENT moves, the version that held it gets SYSPREVIOUS.
    /// Beyond [`MAX_VERSIONS`] the oldest version without stages is deleted.
    /// `change` checks (and may change, e.g. the rotation times) the locked
    /// secret first; `effects` are recorded in the same transaction.
    async fn insert_version(
        &self, project_id: &str, version: &VersionRecord, change: SecretMutation, effects: &Effects,
    ) -> Result<VersionRecord, WriteError>;

    /// Finishes a rotation, in one transaction: moves SYSCURRENT onto the
    /// version `number`, which must hold SYSPENDING (else nothing changes),
    /// gives SYSPREVIOUS to the version that held SYSCURRENT, removes
    /// SYSPENDING, applies `change` to the locked secret (`id`) and records
    /// `effects`.
    async fn promote_pending(
        &self, project_id: &str, secret_id: &str, number: i32, change: SecretMutation, effects: &Effects,
    ) -> Result<VersionRecord, WriteError>;

    /// Takes over an abandoned rotation: moves the update time of the
    /// secret's SYSPENDING stage to `now_ms` if it still marks `number` and
    /// last moved at `seen_ms`; false when another attempt moved it first.
    async fn renew_pending(&self, secret_id: &str, number: i32, seen_ms: i64, now_ms: i64) -> Result<bool, StoreError>;

    /// The read path in one round trip: a secret by name and the version
    /// named by `stage` (when given) or by `number`, with its stages. The
    /// version is `None` when the secret exists but the version does not.
    async fn read_secret_version(
        &self, project_id: &str, name: &str, stage: Option<&str>, number: Option<i32>,
    ) -> Result<Option<(SecretRecord, Option<VersionRecord>)>, StoreError>;

    /// One version by number, with its stages.
    async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError>;

    /// The version a stage points at, with its stages.
    async fn get_version_by_stage(&self, secret_id: &str, stage: &str) -> Result<Option<VersionRecord>, StoreError>;

    /// Versions in ascending order after `after`, at most `limit`.
    async fn list_versions(
        &self, secret_id: &str, after: Option<i32>, limit: u32,
    ) -> Result<Vec<VersionRecord>, StoreError>;

    /// Sets a version's expiry.
    async fn set_version_expiry(
        &self, project_id: &str, name: &str, number: i32, expire_ms: Option<i64>, check: SecretCheck,
    ) -> Result<VersionRecord, WriteError>;

    /// One stage of a secret.
    async fn get_stage(&self, secret_id: &str, stage: &str) -> Result<Option<StageRecord>, StoreError>;

    /// Points a stage at a version (creating it if needed); moving
    /// SYSCURRENT gives SYSPREVIOUS to its previous holder.
    async fn set_stage(
        &self, project_id: &str, name: &str, stage: &str, number: i32, check: SecretCheck,
    ) -> Result<StageRecord, WriteError>;

    /// Removes a custom stage.
    async fn delete_stage(
        &self, project_id: &str, name: &str, stage: &str, check: SecretCheck,
    ) -> Result<(), WriteError>;
}

/// Events, and the notification records their firings leave.
#[async_trait]
pub trait Events: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts an event, unless the project has one of that name or
    /// already `quota` events (counted under the project's lock).
    async fn create_event(&self, event: &EventRecord, quota: u64) -> Result<EventInsert, StoreError>;

    /// One event by name.
    async fn get_event(&self, project_id: &str, name: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Up to `limit` events by name, after `after`.
    async fn list_events(
        &self, project_id: &str, after: Option<&str>, limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Applies `change` to an event under its row lock.
    async fn update_event(
        &self, project_id: &str, name: &str, change: EventMutation,
    ) -> Result<EventRecord, WriteError>;

    /// Deletes an event no secret subscribes to (locked against a
    /// concurrent subscription).
    async fn delete_event(&self, project_id: &str, name: &str) -> Result<(), WriteError>;

    /// Up to `limit` records, newest first, created at or after
    /// `since_ms`, after the record `after`.
    async fn list_notifications(
        &self, project_id: &str, since_ms: i64, after: Option<&str>, limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Claims up to `limit` records due for delivery at `now_ms`, at most
    /// `per_project` of any one project (so that one tenant's backlog
    /// cannot hold back another's notifications), the longest-due first, by
    /// moving their next attempt to `now_ms + lease_ms`; two replicas never
    /// claim one record at once, and a claim a crash abandons comes due
    /// again.
    async fn claim_deliveries(
        &self, now_ms: i64, lease_ms: i64, limit: u32, per_project: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Records how a delivery attempt ended.
    async fn settle_delivery(&self, id: &str, outcome: &Delivery) -> Result<(), StoreError>;

    /// Deletes up to `limit` settled records written before `before_ms`
    /// (past their retention); returns how many went.
    async fn purge_notifications(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;

    /// Fires `SECRET_VERSION_EXPIRED` for up to `limit` versions whose
    /// expiry is at or before `now_ms` and has not been notified, once per
    /// expiry setting (the re-check runs on the locked secret, so replicas
    /// never fire one twice); returns how many fired.
    async fn fire_due_expiries(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError>;
}

/// Rotation tasks and the secrets due for rotation.
#[async_trait]
pub trait Tasks: Send + Sync + std::fmt::Debug + 'static {
    /// Records a rotation that made no version: applies `change` to the
    /// locked secret (`id`) and records `effects`, in one transaction; with
    /// `abandon`, the version of that number loses SYSPENDING and, left
    /// without stages, is deleted (the server kept the old password).
    async fn record_rotation(
        &self, project_id: &str, secret_id: &str, change: SecretMutation, effects: &Effects, abandon: Option<i32>,
    ) -> Result<(), WriteError>;

    /// The number of tasks matching `filter` and up to `limit` of them in
    /// id (= time) order after the task `after`.
    async fn list_tasks(
        &self, project_id: &str, filter: &TaskFilter, after: Option<&str>, limit: u32,
    ) -> Result<(u64, Vec<TaskRecord>), StoreError>;

    /// `(project, name)` of up to `limit` enabled secrets whose automatic
    /// rotation is due at `now_ms` and that the scheduler can rotate (not
    /// COMMON), the longest-due first, at most `per_project` of any one
    /// project, so that no project's backlog holds back another's.
    async fn due_rotations(
        &self, now_ms: i64, limit: u32, per_project: u32,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// How many of the secret's latest tasks since `since_ms` failed in a
    /// row, looking at no more than `limit` of them.
    async fn failures_in_a_row(
        &self, project_id: &str, secret_name: &str, since_ms: i64, limit: u32,
    ) -> Result<u32, StoreError>;
}

/// Grants of secrets to users, and the per-project settings.
#[async_trait]
pub trait Grants: Send + Sync + std::fmt::Debug + 'static {
    /// Creates the grant of `grant.secret_id` to `grant.grantee_id`, or
    /// (one grant per secret and grantee) updates that grant's validity;
    /// the secret must be the project's.
    async fn put_grant(&self, grant: &GrantRecord) -> Result<GrantRecord, WriteError>;

    /// The grants of one secret, by grantee.
    async fn grants_of(&self, secret_id: &str) -> Result<Vec<GrantRecord>, StoreError>;

    /// Sets the validity of an existing grant.
    async fn update_grant(
        &self, secret_id: &str, grantee_id: &str, validity_ms: Option<i64>, now_ms: i64,
    ) -> Result<GrantRecord, WriteError>;

    /// Deletes the secret's grant to `grantee`, or all its grants; returns
    /// how many went.
    async fn delete_grants(&self, secret_id: &str, grantee: Option<&str>) -> Result<u64, StoreError>;

    /// The secret `secret_id` when it is granted to `grantee` at `now_ms`.
    async fn granted_secret(
        &self, secret_id: &str, grantee: &str, now_ms: i64,
    ) -> Result<Option<SecretRecord>, StoreError>;

    /// Whether the secret checker scores new values (default false).
    async fn checking_strength(&self, project_id: &str) -> Result<bool, StoreError>;

    /// Switches the secret checker.
    async fn set_checking_strength(&self, project_id: &str, on: bool) -> Result<(), StoreError>;

    /// Records the project's agencies for a secret type (each name once;
    /// an existing one keeps its id); returns `(name, id)` of each.
    async fn put_agencies(
        &self, project_id: &str, secret_type: &str, names: &[&str], now_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// The project's agencies for a secret type, `(name, id)`.
    async fn agencies(&self, project_id: &str, secret_type: &str) -> Result<Vec<(String, String)>, StoreError>;
}

/// Tags of secrets.
#[async_trait]
pub trait Tags: Send + Sync + std::fmt::Debug + 'static {
    /// Upserts tags (one value per key), keeping at most [`MAX_TAGS`].
    async fn put_tags(
        &self, project_id: &str, secret_id: &str, tags: &[(String, String)], check: SecretCheck,
    ) -> Result<(), WriteError>;

    /// Removes tags by key; absent keys are ignored unless `must_exist`.
    async fn delete_tags(
        &self, project_id: &str, secret_id: &str, keys: &[String], must_exist: bool, check: SecretCheck,
    ) -> Result<(), WriteError>;

    /// Tags of one secret, by key.
    async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Every secret of a project with its tags, by name.
    async fn secrets_with_tags(
        &self, project_id: &str,
    ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError>;
}

/// Shards per secret count (see the secret_counts migration).
pub const COUNT_SHARDS: u32 = 32;

/// Creates take the per-project lock only when the project is within this
/// many secrets of its quota; the quota stays exact as long as fewer creates
/// than this are in flight at once across all replicas.
pub const QUOTA_HEADROOM: u64 = 1024;

/// The database instances rotations act on, per project (issue #33).
#[async_trait]
pub trait Instances: Send + Sync + std::fmt::Debug + 'static {
    /// Registers `instance`; false when the project already has one with
    /// its id (nothing changes then).
    async fn add_instance(&self, instance: &InstanceRecord) -> Result<bool, StoreError>;

    /// The project's instance `id`.
    async fn get_instance(&self, project_id: &str, id: &str) -> Result<Option<InstanceRecord>, StoreError>;

    /// Every instance, or the project's, by project and id.
    async fn list_instances(&self, project_id: Option<&str>) -> Result<Vec<InstanceRecord>, StoreError>;

    /// Removes the project's instance `id`; false when there was none.
    async fn remove_instance(&self, project_id: &str, id: &str) -> Result<bool, StoreError>;
}
