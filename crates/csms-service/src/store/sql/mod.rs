//! The one implementation of [`SecretStore`](super::SecretStore), generic
//! over a [`Dialect`], split by resource: `secrets`, `versions` (with
//! stages) and `tags`.
//!
//! Postgres and SQLite both accept `$n` placeholders and `ON CONFLICT …
//! DO UPDATE`, so the SQL text (`rows`) is shared; a dialect supplies only
//! what differs: how a writing transaction starts, how a project is locked,
//! the row-lock clause, the string aggregate, the migrations and
//! (Postgres) the usual create-secret as one statement.
//!
//! What the shared code needs of a database (decoders for the rows it
//! reads, encoders for the values it binds) is named once, in `sql_bounds!`,
//! and put on each `impl` block by `#[apply(sql_bounds!)]`. Postgres and
//! SQLite satisfy it; the compiler checks each.

use common::{
    db::{FeedEvent, FeedSink, SqlDialect},
    group::Group,
};
use macro_rules_attribute::apply;
use sqlx::{Database, Pool};

use super::{CHANGE_CHANNEL, COUNT_SHARDS, Effects, SecretCheck, StageRecord, StoreError, WriteError};
use crate::domain::{
    Rejection, SecretRecord, VersionRecord,
    events::{Notice, notification_content},
};

/// The bounds of every generic `impl` block of the store; see
/// [`common::with_sql_bounds`]. Defined before the resource modules so that
/// they can use it.
macro_rules! sql_bounds {
    ($($item:tt)*) => {
        common::with_sql_bounds! {
            db: D,
            rows: [
                crate::store::sql::SecretRow, crate::store::sql::VersionRow, crate::store::sql::ReadRow,
                crate::store::sql::EventRow, crate::store::sql::NotificationRow, crate::store::sql::TaskRow,
                crate::store::sql::GrantRow, crate::store::sql::InstanceRow, (bool,),
                (String,), (i32,), (i64,), (String, String), (String, i32, i64), (String, String, String),
                (String, i32, Option<i64>),
            ],
            binds: [
                String, &'q str, &'q [u8], i32, i64, bool, Option<&'q str>, Option<i32>, Option<i64>,
            ],
            item: $($item)*
        }
    };
}

mod events;
mod grants;
mod instances;
mod rows;
mod secrets;
mod tags;
mod tasks;
mod versions;

use rows::text as sql;
pub use rows::{EventRow, GrantRow, InstanceRow, NotificationRow, ReadRow, SecretRow, TaskRow, VersionRow};

/// What differs between the SQL backends of the secret store beyond
/// [`SqlDialect`]: the migrations, the one-statement create, and how a
/// background task claims rows that another replica may be claiming at the
/// same moment.
pub trait Dialect: SqlDialect {
    /// This backend's migrations.
    const MIGRATOR: sqlx::migrate::Migrator;
    /// create-secret far from the quota, for the usual shape (one version
    /// with one stage, no event subscription, no task), as one
    /// self-committing statement: `sql::INSERT_SECRET`'s parameters, the
    /// largest project count that still admits a secret, the version's
    /// `sql::INSERT_VERSION` parameters, its stage and the count shard; it
    /// returns a row per secret inserted, none meaning "near the quota" (the
    /// locked transaction decides). `None` where the backend cannot modify
    /// tables in a `WITH` (SQLite, whose transactions are in-process).
    const CREATE_SECRET_AT_ONCE: Option<&'static str>;
    /// Whether [`Dialect::create_secrets_grouped`] exists: concurrent
    /// creates of that shape far from the quota then share one statement
    /// and one commit.
    const GROUPS_CREATES: bool = false;
    /// Inserts `secrets` (each with its version, its one stage and the
    /// largest project count that still admits it) in one statement and one
    /// commit, answering which were inserted; one not inserted (its name
    /// taken, its project near the quota) goes through the one-row path,
    /// which decides.
    fn create_secrets_grouped(
        _pool: &Pool<Self>, _secrets: &[NewSecret], _shard: i32,
    ) -> impl std::future::Future<Output = Result<Vec<bool>, sqlx::Error>> + Send {
        async { Err(sqlx::Error::Protocol("grouped creates are not supported by this backend".into())) }
    }
    /// Appended to a `SELECT` inside a write transaction to take rows no
    /// other transaction holds (Postgres `FOR UPDATE SKIP LOCKED`; SQLite's
    /// write transactions are serialised already).
    const SKIP_LOCKED: &'static str;
}

/// A create-secret of the usual shape (one version with one stage, no
/// subscription, no task) waiting for its group's statement.
#[derive(Debug)]
pub struct NewSecret {
    pub secret: SecretRecord,
    pub version: VersionRecord,
    /// The largest project count that still admits it.
    pub below: i64,
}

/// The table whose rows [`SqlDialect::lock_project`] locks.
pub(super) const PROJECTS: &str = "csms_projects";

/// The secret store over one pool of dialect `D`.
pub struct SqlSecretStore<D: Dialect> {
    pool: Pool<D>,
    /// Told of this process's own changes right after they commit (the
    /// read cache), set by [`Secrets::watch`](crate::store::Secrets::watch).
    local: std::sync::OnceLock<FeedSink>,
    /// The grouped creates' queue, its writers started by the first create.
    groups: std::sync::OnceLock<Group<NewSecret, bool>>,
}

impl<D: Dialect> std::fmt::Debug for SqlSecretStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSecretStore").field("pool", &self.pool).finish_non_exhaustive()
    }
}

common::sql_store!(SqlSecretStore<D: Dialect>);

impl<D: Dialect> SqlSecretStore<D> {
    /// Wraps a pool (on Postgres, one whose `search_path` is the csms schema).
    pub fn new(pool: Pool<D>) -> Self {
        Self { pool, local: std::sync::OnceLock::new(), groups: std::sync::OnceLock::new() }
    }

    /// Tells this process's feed that `secret_id` changed.
    fn changed(&self, secret_id: &str) {
        if let Some(sink) = self.local.get() {
            sink(FeedEvent::Changed(secret_id.to_owned()));
        }
    }
}

type Query<'q, D> = sqlx::query::Query<'q, D, <D as Database>::Arguments<'q>>;

#[apply(sql_bounds!)]
impl<D: Dialect> SqlSecretStore<D> {
    /// Queues a create for a grouped statement and waits for its commit;
    /// the create back when the group did not insert it (name taken,
    /// project near the quota, queue full) or the group failed, for the
    /// one-row path to decide and to answer: no row of it exists then.
    async fn create_grouped(&self, new: NewSecret) -> Result<(), NewSecret> {
        let group = self.groups.get_or_init(|| {
            // Rows in (project, name) order, so that two groups that meet
            // on a name wait for each other in one direction only.
            let order = |a: &NewSecret, b: &NewSecret| {
                (&a.secret.project_id, &a.secret.name).cmp(&(&b.secret.project_id, &b.secret.name))
            };
            let pool = self.pool.clone();
            Group::start(common::group::CREATES, order, move |batch: Vec<NewSecret>| {
                let pool = pool.clone();
                async move {
                    match D::create_secrets_grouped(&pool, &batch, Self::shard()).await {
                        Ok(inserted) => inserted,
                        Err(e) => {
                            tracing::warn!(error = %e, creates = batch.len(), "a grouped create failed; each retries alone");
                            vec![false; batch.len()]
                        }
                    }
                }
            })
        });
        let (secret, version, below) = (new.secret.clone(), new.version.clone(), new.below);
        match group.try_run(new).await {
            Ok(Some(true)) => Ok(()),
            Ok(_) => Err(NewSecret { secret, version, below }),
            Err(new) => Err(new),
        }
    }

    /// Binds a [`SecretRecord`] to [`sql::INSERT_SECRET`].
    fn bind_secret<'q>(query: Query<'q, D>, s: &'q SecretRecord) -> Query<'q, D> {
        query
            .bind(s.id.as_str())
            .bind(s.project_id.as_str())
            .bind(s.name.as_str())
            .bind(s.state.as_str())
            .bind(s.kms_key_id.as_str())
            .bind(s.description.as_str())
            .bind(s.secret_type.as_str())
            .bind(s.auto_rotation)
            .bind(s.rotation_period.as_str())
            .bind(s.rotation_config.as_str())
            .bind(serde_json::to_string(&s.event_subscriptions).expect("strings serialise"))
            .bind(s.enterprise_project_id.as_str())
            .bind(s.rotation_func_urn.as_str())
            .bind(s.create_ms)
            .bind(s.update_ms)
            .bind(s.scheduled_delete_ms)
            .bind(s.rotation_ms)
            .bind(s.next_rotation_ms)
            .bind(s.state_before_delete.map(|st| st.as_str()))
    }

    /// Binds a [`VersionRecord`] to [`sql::INSERT_VERSION`].
    fn bind_version<'q>(query: Query<'q, D>, v: &'q VersionRecord) -> Query<'q, D> {
        query
            .bind(v.secret_id.as_str())
            .bind(v.number)
            .bind(v.kms_key_id.as_str())
            .bind(v.kind.as_str())
            .bind(v.wrapped_dek.as_slice())
            .bind(v.ciphertext.as_slice())
            .bind(v.create_ms)
            .bind(v.expire_ms)
    }

    async fn lock_secret(
        tx: &mut sqlx::Transaction<'static, D>, project_id: &str, by: &str, value: &str,
    ) -> Result<Option<SecretRecord>, StoreError> {
        let query =
            format!("SELECT {} FROM secrets WHERE project_id = $1 AND {by} = $2{}", sql::SECRET_COLUMNS, D::ROW_LOCK);
        let query = sqlx::query_as(&query).bind(project_id).bind(value);
        let row: Option<SecretRow> =
            query.fetch_optional(&mut **tx).await.map_err(StoreError::db("locking a secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    /// The project's secret whose `by` column (`name` or `id`) is `value`.
    async fn secret_where(&self, project_id: &str, by: &str, value: &str) -> Result<Option<SecretRecord>, StoreError> {
        let query = format!("SELECT {} FROM secrets WHERE project_id = $1 AND {by} = $2", sql::SECRET_COLUMNS);
        let query = sqlx::query_as(&query).bind(project_id).bind(value);
        let row: Option<SecretRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    async fn checked(
        tx: &mut sqlx::Transaction<'static, D>, project_id: &str, by: &str, value: &str, check: SecretCheck,
    ) -> Result<SecretRecord, WriteError> {
        let secret = Self::lock_secret(tx, project_id, by, value).await?.ok_or(match by {
            "id" => Rejection::ResourceNotFound("secret"),
            _ => Rejection::SecretNotFound,
        })?;
        check(&secret)?;
        Ok(secret)
    }

    async fn stages_in(
        tx: &mut sqlx::Transaction<'static, D>, secret_id: &str,
    ) -> Result<Vec<StageRecord>, StoreError> {
        let query = sqlx::query_as(sql::STAGES_OF_SECRET).bind(secret_id);
        let rows: Vec<(String, i32, i64)> =
            query.fetch_all(&mut **tx).await.map_err(StoreError::db("reading stages"))?;
        Ok(rows.into_iter().map(|(name, version, update_ms)| StageRecord { name, version, update_ms }).collect())
    }

    async fn upsert_stage(
        tx: &mut sqlx::Transaction<'static, D>, secret_id: &str, stage: &str, version: i32, now: i64,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(sql::UPSERT_STAGE).bind(secret_id).bind(stage).bind(version).bind(now);
        query.execute(&mut **tx).await.map_err(StoreError::db("moving a stage"))?;
        Ok(())
    }

    async fn version_in(
        tx: &mut sqlx::Transaction<'static, D>, secret_id: &str, number: i32,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let statement = sql::select_version();
        let query = sqlx::query_as(&statement).bind(secret_id).bind(number);
        let row: Option<VersionRow> =
            query.fetch_optional(&mut **tx).await.map_err(StoreError::db("reading a secret version"))?;
        let Some(row) = row else { return Ok(None) };
        let query = sqlx::query_scalar(sql::STAGES_OF_VERSION).bind(secret_id).bind(number);
        let stages: Vec<String> = query.fetch_all(&mut **tx).await.map_err(StoreError::db("reading version stages"))?;
        row.into_record(stages).map(Some)
    }

    async fn insert_versions(
        tx: &mut sqlx::Transaction<'static, D>, versions: &[VersionRecord],
    ) -> Result<(), StoreError> {
        for version in versions {
            Self::bind_version(sqlx::query(sql::INSERT_VERSION), version)
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
        let query = sqlx::query_scalar(sql::STAGES_OF_VERSION).bind(&row.secret_id).bind(row.version);
        let stages: Vec<String> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("reading version stages"))?;
        row.into_record(stages).map(Some)
    }

    /// A unique violation on inserting a secret is its name (the id is a
    /// fresh UUID).
    fn insert_error(e: sqlx::Error) -> super::CreateSecretError {
        if common::db::is_unique_violation(&e) {
            super::CreateSecretError::NameTaken
        } else {
            StoreError::db("inserting a secret")(e).into()
        }
    }

    /// A shard for a count change: random, so that concurrent writers of one
    /// project rarely wait on each other's counter row.
    fn shard() -> i32 {
        (rand::random::<u32>() % COUNT_SHARDS) as i32
    }

    async fn add_count(tx: &mut sqlx::Transaction<'static, D>, project_id: &str, delta: i64) -> Result<(), StoreError> {
        let query = sqlx::query(sql::ADD_SECRET_COUNT).bind(project_id).bind(Self::shard()).bind(delta);
        query.execute(&mut **tx).await.map_err(StoreError::db("counting secrets"))?;
        Ok(())
    }

    async fn count_secrets(tx: &mut sqlx::Transaction<'static, D>, project_id: &str) -> Result<u64, StoreError> {
        let query = sqlx::query_scalar(sql::COUNT_SECRETS).bind(project_id);
        let n: i64 = query.fetch_one(&mut **tx).await.map_err(StoreError::db("counting secrets"))?;
        Ok(n as u64)
    }

    /// Writes a secret's mutable columns back.
    async fn write_secret(tx: &mut sqlx::Transaction<'static, D>, secret: &SecretRecord) -> Result<(), StoreError> {
        let query = sqlx::query(sql::UPDATE_SECRET)
            .bind(secret.project_id.as_str())
            .bind(secret.id.as_str())
            .bind(secret.state.as_str())
            .bind(secret.kms_key_id.as_str())
            .bind(secret.description.as_str())
            .bind(secret.auto_rotation)
            .bind(secret.rotation_period.as_str())
            .bind(serde_json::to_string(&secret.event_subscriptions).expect("strings serialise"))
            .bind(secret.rotation_func_urn.as_str())
            .bind(secret.update_ms)
            .bind(secret.scheduled_delete_ms)
            .bind(secret.next_rotation_ms)
            .bind(secret.state_before_delete.map(|st| st.as_str()))
            .bind(secret.rotation_ms);
        query.execute(&mut **tx).await.map_err(StoreError::db("updating a secret"))?;
        Ok(())
    }

    /// A secret may subscribe only to an event that exists; the event's row
    /// is locked so that a concurrent delete-event waits and then sees the
    /// subscription.
    async fn check_subscription(
        tx: &mut sqlx::Transaction<'static, D>, secret: &SecretRecord,
    ) -> Result<(), WriteError> {
        let Some(event) = secret.event_subscriptions.first() else { return Ok(()) };
        let query = format!("SELECT name FROM csms_events WHERE project_id = $1 AND name = $2{}", D::ROW_LOCK);
        let query = sqlx::query_scalar(&query).bind(secret.project_id.as_str()).bind(event.as_str());
        let found: Option<String> =
            query.fetch_optional(&mut **tx).await.map_err(StoreError::db("reading an event"))?;
        match found {
            Some(_) => Ok(()),
            None => Err(Rejection::ResourceNotFound("event").into()),
        }
    }

    /// Records one firing if the secret subscribes to an enabled event of
    /// its type (otherwise nothing).
    async fn fire(
        tx: &mut sqlx::Transaction<'static, D>, secret: &SecretRecord, notice: &Notice, now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some(event) = secret.event_subscriptions.first() else { return Ok(()) };
        let event_type = notice.event_type.as_str();
        let query = sqlx::query(sql::FIRE)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(secret.project_id.as_str())
            .bind(event.as_str())
            .bind(event_type)
            .bind(format!("%\"{event_type}\"%"))
            .bind(secret.name.as_str())
            .bind(secret.secret_type.as_str())
            .bind(notification_content(event, notice, secret, now_ms))
            .bind(now_ms);
        query.execute(&mut **tx).await.map_err(StoreError::db("recording a notification"))?;
        Ok(())
    }

    /// Records `effects` for `secret` in the write's transaction.
    async fn apply_effects(
        tx: &mut sqlx::Transaction<'static, D>, secret: &SecretRecord, effects: &Effects, now_ms: i64,
    ) -> Result<(), StoreError> {
        for notice in &effects.notices {
            Self::fire(tx, secret, notice, now_ms).await?;
        }
        if let Some(t) = &effects.task {
            let query = sqlx::query(sql::INSERT_TASK)
                .bind(t.id.as_str())
                .bind(t.project_id.as_str())
                .bind(t.secret_name.as_str())
                .bind(t.rotation_func_urn.as_str())
                .bind(t.status.as_str())
                .bind(t.operate_type.as_str())
                .bind(t.task_ms)
                .bind(t.attempts)
                .bind(t.failure.map_or("", |f| f.as_str()))
                .bind(t.error_msg.as_str());
            query.execute(&mut **tx).await.map_err(StoreError::db("recording a rotation task"))?;
        }
        Ok(())
    }

    async fn commit(tx: sqlx::Transaction<'static, D>) -> Result<(), StoreError> {
        tx.commit().await.map_err(StoreError::db("committing"))
    }

    /// Commits a write that changed what a read of `secret_id` returns (its
    /// row, a version, a stage): every replica's feed hears of it when, and
    /// only if, it commits (`NOTIFY` on Postgres), and this process's at
    /// once after the commit, before the write answers, so a caller always
    /// reads its own change. A commit whose outcome is unknown is told too:
    /// an invalidation too many costs one database read.
    async fn commit_change(&self, mut tx: sqlx::Transaction<'static, D>, secret_id: &str) -> Result<(), StoreError> {
        D::notify(&mut tx, CHANGE_CHANNEL, secret_id).await.map_err(StoreError::db("notifying a secret change"))?;
        let committed = tx.commit().await.map_err(StoreError::db("committing"));
        self.changed(secret_id);
        committed
    }
}
