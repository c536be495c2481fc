//! The one implementation of [`KeyStore`](super::KeyStore), generic over a
//! [`Dialect`], split by resource as csms-service's store is: `keys`,
//! `materials`, `aliases`, `grants`, `tags`, with the SQL text and
//! the named row types in `rows`.
//!
//! Postgres and SQLite both accept `$n` placeholders and `ON CONFLICT …
//! DO UPDATE`, so the SQL text is shared; a dialect supplies only what
//! differs: how a writing transaction starts, how a project is locked, how
//! a change is announced to other replicas, the row-lock clause, the
//! migrations, and (Postgres) create-key as one statement.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use common::{
    db::{FeedEvent, SqlDialect},
    group::Group,
};
use macro_rules_attribute::apply;
use sqlx::{Pool, Transaction};
use tokio_util::sync::CancellationToken;

use super::{
    AliasRecord, CHANGE_CHANNEL, COUNT_SHARDS, ChangeEvent, ChangeSink, CreateKeyError, GrantLimits, KeyFilter,
    KeyMutation, NewKey, QUOTA_HEADROOM, StoreError, Tag, UpdateKeyError, WrapMaterial,
};
use crate::domain::{GrantRecord, KeyId, KeyRecord, KeySpec, KeyState, Rejection};

/// What differs between the SQL backends of the key store beyond
/// [`SqlDialect`] (which also carries the change feed): the migrations and
/// the one-statement create.
pub trait Dialect: SqlDialect {
    /// This backend's migrations.
    const MIGRATOR: sqlx::migrate::Migrator;
    /// create-key far from the quota as one self-committing statement
    /// (`INSERT_KEY`'s 21 parameters, then the largest project count
    /// that still admits a key, the wrapped material or NULL, the count
    /// shard), answering how many keys it inserted: 0 means "near the
    /// quota", and the locked transaction decides. `None` where the backend
    /// cannot modify tables in a `WITH` (SQLite, whose transactions are
    /// in-process and cheap).
    const CREATE_KEY_AT_ONCE: Option<&'static str>;

    /// Whether [`Dialect::create_keys_grouped`] exists: concurrent creates
    /// far from the quota then share one statement and one commit.
    const GROUPS_CREATES: bool = false;

    /// Inserts `keys` (each with the largest project count that still
    /// admits it) in one statement and one commit, answering which were
    /// inserted; one not inserted (its alias taken, its project near the
    /// quota) goes through the locked transaction, which decides.
    fn create_keys_grouped(
        _pool: &Pool<Self>, _keys: &[(&NewKey, i64)], _shard: i32,
    ) -> impl std::future::Future<Output = Result<Vec<bool>, sqlx::Error>> + Send {
        async { Err(sqlx::Error::Protocol("grouped creates are not supported by this backend".into())) }
    }
}

/// The key store over one pool of dialect `D`.
#[derive(Debug)]
pub struct SqlKeyStore<D: Dialect> {
    pool: Pool<D>,
    round_trips: RoundTrips,
    /// The grouped creates' queue (key, admission bound), its writers
    /// started by the first create.
    groups: std::sync::OnceLock<Group<(NewKey, i64), bool>>,
}

common::sql_store!(SqlKeyStore<D: Dialect>);

impl<D: Dialect> SqlKeyStore<D> {
    /// Wraps a pool (on Postgres, one whose `search_path` is the kms schema).
    pub fn new(pool: Pool<D>) -> Self {
        Self { pool, round_trips: RoundTrips::default(), groups: std::sync::OnceLock::new() }
    }
}

/// Counts round trips (the hot-path test asserts they stay flat).
#[derive(Debug, Default)]
struct RoundTrips(AtomicU64);

impl RoundTrips {
    fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("opendew_kms_db_round_trips_total").increment(1);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the shared code needs of a database, put on each `impl` block
/// below: decoders for the rows it reads and encoders for the values it
/// binds (with executors, see [`common::with_sql_bounds`]). Postgres and
/// SQLite satisfy them; the compiler checks each.
macro_rules! sql_bounds {
    ($($item:tt)*) => {
        common::with_sql_bounds! {
            db: D,
            rows: [
                crate::store::sql::KeyRow,
                crate::store::sql::GrantRow,
                crate::store::sql::rows::AliasRow,
                crate::store::sql::rows::KeyRefRow,
                crate::store::sql::rows::MaterialRow,
                crate::store::sql::rows::MaterialVersionRow,
                crate::store::sql::rows::PurgedKeyRow,
                // common::tags::sql's rows: (key, value), (owner, key, value)
                (String, String),
                (String, String, String),
                (String,),
                (i64,)
            ],
            binds: [String, Vec<u8>, i32, i64, bool, Option<String>, Option<i32>, Option<i64>, Option<Vec<u8>>],
            item: $($item)*
        }
    };
}

/// Binds a key's rotation schedule (interval, anchor, last rotation,
/// count), which [`text::INSERT_KEY`] and [`text::UPDATE_KEY`] both take as
/// four consecutive parameters in this order.
macro_rules! bind_rotation {
    ($query:expr, $r:expr) => {{
        let r: &KeyRecord = $r;
        $query
            .bind(r.rotation_interval_days as i32)
            .bind(r.rotation_anchor_ms)
            .bind(r.last_rotation_ms)
            .bind(r.rotations as i32)
    }};
}

/// Binds a new key's record to [`text::INSERT_KEY`]'s 21 parameters (a
/// macro: the same binds go on a `query` and on a `query_as`).
macro_rules! bind_key {
    ($query:expr, $r:expr) => {{
        let r: &KeyRecord = $r;
        let query = $query
            .bind(r.key_id.to_string())
            .bind(r.project_id.clone())
            .bind(r.domain_id.clone())
            .bind(r.alias.clone())
            .bind(r.description.clone())
            .bind(r.spec.as_str().to_owned())
            .bind(r.usage.as_str().to_owned())
            .bind(r.origin.as_str().to_owned())
            .bind(r.state as i32)
            .bind(r.default_key)
            .bind(r.enterprise_project_id.clone())
            .bind(r.rotation_enabled)
            .bind(r.creation_ms)
            .bind(r.scheduled_deletion_ms)
            .bind(r.expiration_ms)
            .bind(r.material_version);
        bind_rotation!(query, r).bind(r.import_digest.clone())
    }};
}

mod aliases;
mod grants;
mod keys;
mod materials;
mod rows;
mod tags;

use rows::text;
pub use rows::{GrantRow, KeyRow};

#[apply(sql_bounds!)]
impl<D: Dialect> SqlKeyStore<D> {
    /// A shard for a count change: random, so that concurrent writers of one
    /// project rarely wait on each other's counter row.
    fn shard() -> i32 {
        (rand::random::<u32>() % COUNT_SHARDS as u32) as i32
    }

    /// Adjusts a key count inside a transaction, on a random shard.
    async fn add_count(
        tx: &mut Transaction<'static, D>, project_id: &str, spec: KeySpec, state: KeyState, default_key: bool,
        delta: i64,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(text::ADD_COUNT)
            .bind(project_id.to_owned())
            .bind(spec.as_str().to_owned())
            .bind(state as i32)
            .bind(default_key)
            .bind(Self::shard())
            .bind(delta);
        query.execute(&mut **tx).await.map_err(StoreError::db("counting keys"))?;
        Ok(())
    }

    /// The key, locked, inside `tx`: `NotFound` when the project has none.
    async fn lock_key(
        tx: &mut Transaction<'static, D>, project_id: &str, key_id: KeyId,
    ) -> Result<KeyRecord, UpdateKeyError> {
        let statement = format!("{}{}", text::select_one("key_id"), D::ROW_LOCK);
        let query = sqlx::query_as(&statement).bind(project_id.to_owned()).bind(key_id.to_string());
        let row: Option<KeyRow> = query.fetch_optional(&mut **tx).await.map_err(StoreError::db("locking a key"))?;
        Ok(KeyRecord::try_from(row.ok_or(UpdateKeyError::NotFound)?)?)
    }

    /// Runs `change` on the locked row and writes every mutable column.
    /// When the change moved the key to a new material version, `wrap`
    /// makes that version's wrapped material, inserted in the same
    /// transaction (a rotation): the key never names a version it lacks.
    async fn update_locked(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation, wrap: Option<WrapMaterial>,
    ) -> Result<KeyRecord, UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut key = Self::lock_key(&mut tx, project_id, key_id).await?;
        let (old_state, old_version) = (key.state, key.material_version);
        change(&mut key).map_err(UpdateKeyError::Rejected)?;
        if key.state != old_state {
            Self::add_count(&mut tx, project_id, key.spec, old_state, key.default_key, -1).await?;
            Self::add_count(&mut tx, project_id, key.spec, key.state, key.default_key, 1).await?;
        }
        if old_version.is_some() && key.material_version.is_none() {
            // Imported material deleted: nothing of it is left to open with.
            let query = sqlx::query(text::DELETE_MATERIALS).bind(key_id.to_string());
            query.execute(&mut *tx).await.map_err(StoreError::db("destroying key material"))?;
        }
        if key.material_version != old_version
            && let Some(version) = key.material_version
        {
            let wrap = wrap.ok_or_else(|| StoreError::Corrupt(format!("{key_id}: a new version without material")))?;
            let wrapped = wrap(&key).map_err(UpdateKeyError::Rejected)?;
            let query = sqlx::query(text::INSERT_MATERIAL)
                .bind(key_id.to_string())
                .bind(version)
                .bind(wrapped)
                .bind(key.last_rotation_ms.unwrap_or_else(common::now_ms));
            query.execute(&mut *tx).await.map_err(StoreError::db("inserting key material"))?;
        }
        let query = sqlx::query(text::UPDATE_KEY)
            .bind(project_id.to_owned())
            .bind(key_id.to_string())
            .bind(key.alias.clone())
            .bind(key.description.clone())
            .bind(key.state as i32)
            .bind(key.scheduled_deletion_ms)
            .bind(key.rotation_enabled);
        let query = bind_rotation!(query, &key).bind(key.material_version);
        let updated = query.bind(key.expiration_ms).bind(key.import_digest.clone()).execute(&mut *tx).await;
        if let Err(e) = updated {
            return Err(if common::db::is_unique_violation(&e) {
                UpdateKeyError::AliasTaken
            } else {
                StoreError::db("updating a key")(e).into()
            });
        }
        D::notify(&mut tx, CHANGE_CHANNEL, &key_id.to_string())
            .await
            .map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a key change"))?;
        Ok(key)
    }
}
