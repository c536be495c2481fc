//! The one implementation of [`KeyStore`], generic over a [`Dialect`].
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
    KeyMutation, KeyStore, NewKey, QUOTA_HEADROOM, StoreError, Tag, UpdateKeyError, WrapMaterial,
};
use crate::domain::{
    GrantOperation, GrantRecord, KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, PrincipalType, Rejection,
};

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
        _pool: &Pool<Self>,
        _keys: &[(&NewKey, i64)],
        _shard: i32,
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

impl<D: Dialect> common::db::SqlStore for SqlKeyStore<D> {
    type Db = D;
    const MIGRATOR: sqlx::migrate::Migrator = D::MIGRATOR;
    fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

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

/// SQL text shared by both backends.
mod text {
    pub const KEY_COLUMNS: &str = "key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, \
        origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
        last_rotation_ms, rotations, import_digest";

    pub const INSERT_KEY: &str = "INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, \
        key_spec, key_usage, origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
        last_rotation_ms, rotations, import_digest) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

    pub const INSERT_MATERIAL: &str =
        "INSERT INTO key_materials (key_id, version, wrapped, created_ms) VALUES ($1, $2, $3, $4)";

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

    pub const MATERIAL_VERSIONS: &str =
        "SELECT version, created_ms FROM key_materials WHERE key_id = $1 ORDER BY version";

    /// Every mutable column: a transition may change any of them.
    pub const UPDATE_KEY: &str = "UPDATE keys SET key_alias = $3, key_description = $4, key_state = $5, \
        scheduled_deletion_ms = $6, rotation_enabled = $7, rotation_interval_days = $8, rotation_anchor_ms = $9, \
        last_rotation_ms = $10, rotations = $11, material_version = $12, expiration_ms = $13, import_digest = $14 \
        WHERE project_id = $1 AND key_id = $2";

    /// External keys whose material expired at `$1`.
    pub const EXPIRED_IMPORTS: &str = "SELECT project_id, key_id FROM keys WHERE expiration_ms IS NOT NULL \
        AND expiration_ms <= $1 AND key_state IN (2, 3) ORDER BY expiration_ms LIMIT $2";

    /// Enabled keys whose rotation period ended: `$1` now, `$2` the length
    /// of a day in ms, `$3` how many.
    pub const DUE_ROTATIONS: &str = "SELECT project_id, key_id FROM keys WHERE rotation_enabled AND key_state = 2 \
        AND rotation_anchor_ms + rotation_interval_days * $2 <= $1 ORDER BY rotation_anchor_ms LIMIT $3";

    /// Keys due for deletion; `$1` is now in ms. (State 4 = pending deletion.)
    pub const DUE_KEYS: &str = "SELECT key_id FROM keys WHERE key_state = 4 AND scheduled_deletion_ms <= $1";

    pub const DELETE_MATERIALS: &str = "DELETE FROM key_materials WHERE key_id = $1";

    pub const DELETE_DUE_KEY: &str = "DELETE FROM keys WHERE key_id = $1 AND key_state = 4 \
        AND scheduled_deletion_ms <= $2 RETURNING project_id, key_spec, default_key";

    /// `WHERE` clause of list queries: `$2` state filter, `$3` spec filter,
    /// each NULL for "any".
    pub const LIST_WHERE: &str = "WHERE project_id = $1 AND ($2 IS NULL OR key_state = $2) \
        AND ($3 IS NULL OR key_spec = $3)";

    pub const INSERT_ALIAS: &str =
        "INSERT INTO key_aliases (project_id, alias, key_id, create_ms, update_ms) VALUES ($1, $2, $3, $4, $4)";

    pub const MOVE_ALIAS: &str = "UPDATE key_aliases SET key_id = $3, update_ms = $4 \
        WHERE project_id = $1 AND alias = $2 RETURNING alias, key_id, create_ms, update_ms";

    pub const COUNT_ALIASES: &str = "SELECT COUNT(*) FROM key_aliases WHERE key_id = $1";

    pub const DELETE_ALIAS: &str = "DELETE FROM key_aliases WHERE project_id = $1 AND alias = $2 AND key_id = $3";

    pub const FIND_ALIAS: &str =
        "SELECT alias, key_id, create_ms, update_ms FROM key_aliases WHERE project_id = $1 AND alias = $2";

    /// `$2` a key id or NULL, `$3` the last alias of the previous page.
    pub const LIST_ALIASES: &str = "SELECT alias, key_id, create_ms, update_ms FROM key_aliases \
        WHERE project_id = $1 AND ($2 IS NULL OR key_id = $2) AND alias > $3 ORDER BY alias LIMIT $4";

    pub const GRANT_COLUMNS: &str = "grant_id, key_id, project_id, grantee, grantee_type, operations, \
        issuing_principal, retiring_principal, name, creation_ms";

    pub const INSERT_GRANT: &str = "INSERT INTO key_grants (grant_id, key_id, project_id, grantee, grantee_type, \
        operations, issuing_principal, retiring_principal, name, creation_ms) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    pub const COUNT_GRANTS: &str = "SELECT COUNT(*) FROM key_grants WHERE key_id = $1";

    pub const COUNT_PROJECT_GRANTS: &str = "SELECT COUNT(*) FROM key_grants WHERE project_id = $1";

    pub const DELETE_GRANT: &str = "DELETE FROM key_grants WHERE grant_id = $1";

    /// Key tags in the shared tag-table shape.
    pub const TAGS: common::tags::sql::TagTable =
        common::tags::sql::TagTable { table: "key_tags", owner: "key_id", owners: "keys", owner_id: "key_id" };

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
pub struct KeyRow {
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
    rotation_interval_days: i32,
    rotation_anchor_ms: Option<i64>,
    last_rotation_ms: Option<i64>,
    rotations: i32,
    import_digest: Option<Vec<u8>>,
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
            rotation_interval_days: u32::try_from(row.rotation_interval_days).map_err(|_| corrupt())?,
            rotation_anchor_ms: row.rotation_anchor_ms,
            last_rotation_ms: row.last_rotation_ms,
            rotations: u32::try_from(row.rotations).map_err(|_| corrupt())?,
            import_digest: row.import_digest,
        })
    }
}

/// A `key_grants` row.
#[derive(Debug, sqlx::FromRow)]
pub struct GrantRow {
    grant_id: String,
    key_id: String,
    project_id: String,
    grantee: String,
    grantee_type: String,
    operations: String,
    issuing_principal: String,
    retiring_principal: Option<String>,
    name: String,
    creation_ms: i64,
}

impl TryFrom<GrantRow> for GrantRecord {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("grant {}", row.grant_id));
        let operations = row
            .operations
            .split(',')
            .map(|op| GrantOperation::parse(op).ok_or_else(corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GrantRecord {
            key_id: KeyId(uuid::Uuid::parse_str(&row.key_id).map_err(|_| corrupt())?),
            grantee_type: PrincipalType::parse(&row.grantee_type).ok_or_else(corrupt)?,
            operations,
            grant_id: row.grant_id,
            project_id: row.project_id,
            grantee: row.grantee,
            issuing_principal: row.issuing_principal,
            retiring_principal: row.retiring_principal,
            name: row.name,
            creation_ms: row.creation_ms,
        })
    }
}

/// (project, key id) rows, the background tasks' work lists.
fn key_refs(rows: Vec<(String, String)>) -> Result<Vec<(String, KeyId)>, StoreError> {
    rows.into_iter()
        .map(|(project, id)| {
            let key_id = uuid::Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt(id.clone()))?;
            Ok((project, KeyId(key_id)))
        })
        .collect()
}

fn alias_record((alias, key_id, create_ms, update_ms): (String, String, i64, i64)) -> Result<AliasRecord, StoreError> {
    let key_id = KeyId(uuid::Uuid::parse_str(&key_id).map_err(|_| StoreError::Corrupt(alias.clone()))?);
    Ok(AliasRecord { alias, key_id, create_ms, update_ms })
}

fn tag_error(e: common::tags::sql::TagWriteError) -> UpdateKeyError {
    match e {
        common::tags::sql::TagWriteError::Fault(fault) => UpdateKeyError::Rejected(Rejection::Tag(fault)),
        common::tags::sql::TagWriteError::Store(e) => UpdateKeyError::Store(e),
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
                KeyRow,
                GrantRow,
                (i32, Vec<u8>),
                (i32, i64),
                (String, String),
                (String, String, String),
                (String, String, i64, i64),
                (String, String, bool),
                (String,),
                (i64,)
            ],
            binds: [String, Vec<u8>, i32, i64, bool, Option<String>, Option<i32>, Option<i64>, Option<Vec<u8>>],
            item: $($item)*
        }
    };
}

/// Binds a new key's record to [`text::INSERT_KEY`]'s 21 parameters (a
/// macro: the same binds go on a `query` and on a `query_as`).
macro_rules! bind_key {
    ($query:expr, $r:expr) => {{
        let r: &KeyRecord = $r;
        $query
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
            .bind(r.material_version)
            .bind(r.rotation_interval_days as i32)
            .bind(r.rotation_anchor_ms)
            .bind(r.last_rotation_ms)
            .bind(r.rotations as i32)
            .bind(r.import_digest.clone())
    }};
}

#[apply(sql_bounds!)]
impl<D: Dialect> SqlKeyStore<D> {
    async fn count_in(tx: &mut Transaction<'static, D>, project_id: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(text::COUNT_USER_KEYS)
            .bind(project_id.to_owned())
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("counting keys"))?;
        Ok(n)
    }

    /// Adjusts a key count inside a transaction, on a random shard.
    async fn add_count(
        tx: &mut Transaction<'static, D>,
        project_id: &str,
        spec: KeySpec,
        state: KeyState,
        default_key: bool,
        delta: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(text::ADD_COUNT)
            .bind(project_id.to_owned())
            .bind(spec.as_str().to_owned())
            .bind(state as i32)
            .bind(default_key)
            .bind(Self::shard())
            .bind(delta)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::db("counting keys"))?;
        Ok(())
    }

    /// Queues `key` for a grouped create and waits for its statement's
    /// commit; the key back when the group did not insert it (alias
    /// taken, project near the quota, queue full) or the group failed, for
    /// the one-row path to decide and to answer.
    async fn create_grouped(&self, key: NewKey, below: i64) -> Result<KeyRecord, NewKey> {
        let group = self.groups.get_or_init(|| {
            // Rows in (project, alias) order, so that two groups that meet
            // on an alias wait for each other in one direction only.
            let order = |a: &(NewKey, i64), b: &(NewKey, i64)| {
                (&a.0.record.project_id, &a.0.record.alias).cmp(&(&b.0.record.project_id, &b.0.record.alias))
            };
            let pool = self.pool.clone();
            Group::start(common::group::CREATES, order, move |batch: Vec<(NewKey, i64)>| {
                let pool = pool.clone();
                async move {
                    let keys: Vec<(&NewKey, i64)> = batch.iter().map(|(k, below)| (k, *below)).collect();
                    match D::create_keys_grouped(&pool, &keys, Self::shard()).await {
                        Ok(inserted) => inserted,
                        Err(e) => {
                            tracing::warn!(error = %e, creates = keys.len(), "a grouped create failed; each retries alone");
                            vec![false; keys.len()]
                        }
                    }
                }
            })
        });
        let record = key.record.clone();
        let wrapped = key.wrapped_material.clone();
        match group.try_run((key, below)).await {
            Ok(Some(true)) => Ok(record),
            // Not inserted, or the statement failed (the one-row path
            // meets the same error, or succeeds): its outcome is known, no
            // row of this key exists.
            Ok(_) => Err(NewKey { record, wrapped_material: wrapped }),
            // The queue is full.
            Err((key, _)) => Err(key),
        }
    }

    /// A shard for a count change: random, so that concurrent writers of one
    /// project rarely wait on each other's counter row.
    fn shard() -> i32 {
        (rand::random::<u32>() % COUNT_SHARDS as u32) as i32
    }

    /// A unique violation on insert is the alias (the key id is a fresh UUID).
    fn insert_error(e: sqlx::Error) -> CreateKeyError {
        if common::db::is_unique_violation(&e) {
            CreateKeyError::AliasTaken
        } else {
            StoreError::db("inserting a key")(e).into()
        }
    }

    async fn insert_key(tx: &mut Transaction<'static, D>, key: &NewKey) -> Result<(), CreateKeyError> {
        let r = &key.record;
        let inserted = bind_key!(sqlx::query(text::INSERT_KEY), r).execute(&mut **tx).await;
        if let Err(e) = inserted {
            return Err(Self::insert_error(e));
        }
        if let Some(wrapped) = &key.wrapped_material {
            sqlx::query(text::INSERT_MATERIAL)
                .bind(r.key_id.to_string())
                .bind(1_i32)
                .bind(wrapped.clone())
                .bind(r.creation_ms)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("inserting key material"))?;
        }
        Ok(())
    }

    async fn select_key(&self, project_id: &str, by: &str, value: String) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<KeyRow> = sqlx::query_as(&text::select_one(by))
            .bind(project_id.to_owned())
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    /// The key, locked, inside `tx`: `NotFound` when the project has none.
    async fn lock_key(
        tx: &mut Transaction<'static, D>,
        project_id: &str,
        key_id: KeyId,
    ) -> Result<KeyRecord, UpdateKeyError> {
        let row: Option<KeyRow> = sqlx::query_as(&format!("{}{}", text::select_one("key_id"), D::ROW_LOCK))
            .bind(project_id.to_owned())
            .bind(key_id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db("locking a key"))?;
        Ok(KeyRecord::try_from(row.ok_or(UpdateKeyError::NotFound)?)?)
    }

    /// The alias may name `key`: the key is not on its way out, and has
    /// room for one more alias.
    async fn check_alias_target(
        tx: &mut Transaction<'static, D>,
        key: &KeyRecord,
        max_per_key: usize,
    ) -> Result<(), UpdateKeyError> {
        if key.default_key {
            return Err(UpdateKeyError::Rejected(Rejection::DefaultKeyForbidden));
        }
        if key.state == KeyState::PendingDeletion {
            return Err(UpdateKeyError::Rejected(Rejection::KeyPendingDeletion));
        }
        let (n,): (i64,) = sqlx::query_as(text::COUNT_ALIASES)
            .bind(key.key_id.to_string())
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("counting aliases"))?;
        if n as usize >= max_per_key {
            return Err(UpdateKeyError::Rejected(Rejection::AliasLimit));
        }
        Ok(())
    }

    /// Runs `change` on the locked row and writes every mutable column.
    /// When the change moved the key to a new material version, `wrap`
    /// makes that version's wrapped material, inserted in the same
    /// transaction (a rotation): the key never names a version it lacks.
    async fn update_locked(
        &self,
        project_id: &str,
        key_id: KeyId,
        change: KeyMutation,
        wrap: Option<WrapMaterial>,
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
            sqlx::query(text::DELETE_MATERIALS)
                .bind(key_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("destroying key material"))?;
        }
        if key.material_version != old_version
            && let Some(version) = key.material_version
        {
            let wrap = wrap.ok_or_else(|| StoreError::Corrupt(format!("{key_id}: a new version without material")))?;
            let wrapped = wrap(&key).map_err(UpdateKeyError::Rejected)?;
            sqlx::query(text::INSERT_MATERIAL)
                .bind(key_id.to_string())
                .bind(version)
                .bind(wrapped)
                .bind(key.last_rotation_ms.unwrap_or_else(common::now_ms))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("inserting key material"))?;
        }
        let updated = sqlx::query(text::UPDATE_KEY)
            .bind(project_id.to_owned())
            .bind(key_id.to_string())
            .bind(key.alias.clone())
            .bind(key.description.clone())
            .bind(key.state as i32)
            .bind(key.scheduled_deletion_ms)
            .bind(key.rotation_enabled)
            .bind(key.rotation_interval_days as i32)
            .bind(key.rotation_anchor_ms)
            .bind(key.last_rotation_ms)
            .bind(key.rotations as i32)
            .bind(key.material_version)
            .bind(key.expiration_ms)
            .bind(key.import_digest.clone())
            .execute(&mut *tx)
            .await;
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

    /// Deletes one due key with its material in a short transaction; a
    /// replica that loses the race deletes nothing. True when it deleted.
    async fn purge_one(&self, key_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        sqlx::query(text::DELETE_MATERIALS)
            .bind(key_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("destroying key material"))?;
        let gone: Option<(String, String, bool)> = sqlx::query_as(text::DELETE_DUE_KEY)
            .bind(key_id.to_owned())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("deleting a key"))?;
        let Some((project_id, spec, default_key)) = gone else {
            tx.rollback().await.map_err(StoreError::db("rolling back"))?;
            return Ok(false);
        };
        let spec = KeySpec::parse(&spec).ok_or_else(|| StoreError::Corrupt(key_id.to_owned()))?;
        Self::add_count(&mut tx, &project_id, spec, KeyState::PendingDeletion, default_key, -1).await?;
        D::notify(&mut tx, CHANGE_CHANNEL, key_id).await.map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a key deletion"))?;
        Ok(true)
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> KeyStore for SqlKeyStore<D> {
    async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        self.round_trips.tick();
        sqlx::query(text::CLAIM_FINGERPRINT)
            .bind(fingerprint.to_owned())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("storing the root key fingerprint"))?;
        let (stored,): (String,) = sqlx::query_as(text::READ_FINGERPRINT)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading the root key fingerprint"))?;
        Ok(stored)
    }

    async fn create_key(&self, key: NewKey, quota: Option<u64>) -> Result<KeyRecord, CreateKeyError> {
        self.round_trips.tick();
        // Admitted while the project's count stays below this (see
        // QUOTA_HEADROOM); otherwise the locked transaction below.
        let below = quota.map_or(i64::MAX, |q| q.saturating_sub(QUOTA_HEADROOM).min(i64::MAX as u64) as i64);
        let key = if D::GROUPS_CREATES && below > 0 {
            match self.create_grouped(key, below).await {
                Ok(record) => return Ok(record),
                Err(key) => key,
            }
        } else {
            key
        };
        let r = &key.record;
        if let Some(sql) = D::CREATE_KEY_AT_ONCE {
            let (inserted,): (i64,) = bind_key!(sqlx::query_as(sql), r)
                .bind(below)
                .bind(key.wrapped_material.clone())
                .bind(Self::shard())
                .fetch_one(&self.pool)
                .await
                .map_err(Self::insert_error)?;
            if inserted == 1 {
                return Ok(key.record);
            }
        }
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        if let Some(quota) = quota {
            let unlocked = Self::count_in(&mut tx, &r.project_id).await? as u64;
            if unlocked + QUOTA_HEADROOM >= quota {
                // Near the quota: serialise this project's creators, so two
                // concurrent creates cannot both see "quota - 1" keys.
                D::lock_project(&mut tx, "kms_projects", &r.project_id)
                    .await
                    .map_err(StoreError::db("locking the project"))?;
                if Self::count_in(&mut tx, &r.project_id).await? as u64 >= quota {
                    return Err(CreateKeyError::QuotaExceeded);
                }
            }
        }
        Self::insert_key(&mut tx, &key).await?;
        Self::add_count(&mut tx, &r.project_id, r.spec, r.state, r.default_key, 1).await?;
        tx.commit().await.map_err(StoreError::db("committing a new key"))?;
        Ok(key.record)
    }

    async fn get_key(&self, project_id: &str, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.select_key(project_id, "key_id", key_id.to_string()).await
    }

    async fn find_by_alias(&self, project_id: &str, alias: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.select_key(project_id, "key_alias", alias.to_owned()).await
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
        let spec = filter.spec.map(|s| s.as_str().to_owned());
        let rows: Vec<KeyRow> = sqlx::query_as(&text::list_page())
            .bind(project_id.to_owned())
            .bind(state)
            .bind(spec.clone())
            .bind(i64::from(limit))
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing keys"))?;
        let (total,): (i64,) = sqlx::query_as(&text::list_count())
            .bind(project_id.to_owned())
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
        sqlx::query_as(text::SELECT_MATERIALS)
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
        self.update_locked(project_id, key_id, change, None).await
    }

    async fn rotate_key(
        &self,
        project_id: &str,
        key_id: KeyId,
        change: KeyMutation,
        wrap: WrapMaterial,
    ) -> Result<KeyRecord, UpdateKeyError> {
        self.update_locked(project_id, key_id, change, Some(wrap)).await
    }

    async fn material_versions(&self, key_id: KeyId) -> Result<Vec<(i32, i64)>, StoreError> {
        self.round_trips.tick();
        sqlx::query_as(text::MATERIAL_VERSIONS)
            .bind(key_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading key material versions"))
    }

    async fn due_rotations(&self, now_ms: i64, day_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError> {
        self.round_trips.tick();
        let rows: Vec<(String, String)> = sqlx::query_as(text::DUE_ROTATIONS)
            .bind(now_ms)
            .bind(day_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("finding keys due for rotation"))?;
        key_refs(rows)
    }

    async fn create_alias(
        &self,
        project_id: &str,
        alias: &str,
        key_id: KeyId,
        now_ms: i64,
        max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let key = Self::lock_key(&mut tx, project_id, key_id).await?;
        Self::check_alias_target(&mut tx, &key, max_per_key).await?;
        let inserted = sqlx::query(text::INSERT_ALIAS)
            .bind(project_id.to_owned())
            .bind(alias.to_owned())
            .bind(key_id.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if common::db::is_unique_violation(&e) {
                UpdateKeyError::AliasTaken
            } else {
                StoreError::db("inserting an alias")(e).into()
            });
        }
        tx.commit().await.map_err(StoreError::db("committing an alias"))?;
        Ok(AliasRecord { alias: alias.to_owned(), key_id, create_ms: now_ms, update_ms: now_ms })
    }

    async fn associate_alias(
        &self,
        project_id: &str,
        alias: &str,
        key_id: KeyId,
        now_ms: i64,
        max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let key = Self::lock_key(&mut tx, project_id, key_id).await?;
        Self::check_alias_target(&mut tx, &key, max_per_key).await?;
        let moved: Option<(String, String, i64, i64)> = sqlx::query_as(text::MOVE_ALIAS)
            .bind(project_id.to_owned())
            .bind(alias.to_owned())
            .bind(key_id.to_string())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("moving an alias"))?;
        let record = alias_record(moved.ok_or(UpdateKeyError::Rejected(Rejection::AliasNotFound))?)?;
        tx.commit().await.map_err(StoreError::db("committing an alias"))?;
        Ok(record)
    }

    async fn delete_aliases(&self, project_id: &str, key_id: KeyId, aliases: &[String]) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        for alias in aliases {
            let deleted = sqlx::query(text::DELETE_ALIAS)
                .bind(project_id.to_owned())
                .bind(alias.clone())
                .bind(key_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("deleting an alias"))?;
            if D::rows_affected(&deleted) == 0 {
                return Err(UpdateKeyError::Rejected(Rejection::AliasNotFound));
            }
        }
        tx.commit().await.map_err(StoreError::db("committing alias deletions"))?;
        Ok(())
    }

    async fn find_alias(&self, project_id: &str, alias: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(text::FIND_ALIAS)
            .bind(project_id.to_owned())
            .bind(alias.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading an alias"))?;
        row.map(alias_record).transpose()
    }

    async fn list_aliases(
        &self,
        project_id: &str,
        key_id: Option<KeyId>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        self.round_trips.tick();
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(text::LIST_ALIASES)
            .bind(project_id.to_owned())
            .bind(key_id.map(|k| k.to_string()))
            .bind(after.to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing aliases"))?;
        rows.into_iter().map(alias_record).collect()
    }

    async fn put_tags(&self, project_id: &str, key_id: KeyId, tags: &[Tag], max: usize) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_key(&mut tx, project_id, key_id).await?;
        common::tags::sql::put(&mut tx, &text::TAGS, &key_id.to_string(), tags, max).await.map_err(tag_error)?;
        tx.commit().await.map_err(StoreError::db("committing tags"))?;
        Ok(())
    }

    async fn delete_tags(
        &self,
        project_id: &str,
        key_id: KeyId,
        keys: &[String],
        must_exist: bool,
    ) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_key(&mut tx, project_id, key_id).await?;
        common::tags::sql::delete(&mut tx, &text::TAGS, &key_id.to_string(), keys, must_exist)
            .await
            .map_err(tag_error)?;
        tx.commit().await.map_err(StoreError::db("committing tags"))?;
        Ok(())
    }

    async fn tags(&self, key_id: KeyId) -> Result<Vec<Tag>, StoreError> {
        self.round_trips.tick();
        common::tags::sql::list(&self.pool, &text::TAGS, &key_id.to_string()).await
    }

    async fn keys_with_tags(&self, project_id: &str) -> Result<Vec<(KeyRecord, Vec<Tag>)>, StoreError> {
        self.round_trips.tick();
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT {} FROM keys WHERE project_id = $1 ORDER BY creation_ms, key_id",
            text::KEY_COLUMNS
        ))
        .bind(project_id.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing keys"))?;
        let mut tags =
            common::tags::sql::by_owner(common::tags::sql::of_project(&self.pool, &text::TAGS, project_id).await?);
        rows.into_iter()
            .map(|row| {
                let key = KeyRecord::try_from(row)?;
                let mine = tags.remove(&key.key_id.to_string()).unwrap_or_default();
                Ok((key, mine))
            })
            .collect()
    }

    async fn get_key_any(&self, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<KeyRow> = sqlx::query_as(&format!("SELECT {} FROM keys WHERE key_id = $1", text::KEY_COLUMNS))
            .bind(key_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn create_grant(
        &self,
        grant: &GrantRecord,
        check: KeyMutation,
        limits: GrantLimits,
    ) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut key = Self::lock_key(&mut tx, &grant.project_id, grant.key_id).await?;
        check(&mut key).map_err(UpdateKeyError::Rejected)?;
        let (n,): (i64,) = sqlx::query_as(text::COUNT_GRANTS)
            .bind(grant.key_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("counting grants"))?;
        if n as usize >= limits.per_key {
            return Err(UpdateKeyError::Rejected(Rejection::GrantQuota));
        }
        // The project's count under its lock, so that concurrent grants on
        // different keys cannot both take the last place.
        D::lock_project(&mut tx, "kms_projects", &grant.project_id)
            .await
            .map_err(StoreError::db("locking the project"))?;
        let (n,): (i64,) = sqlx::query_as(text::COUNT_PROJECT_GRANTS)
            .bind(grant.project_id.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("counting grants"))?;
        if n as usize >= limits.per_project {
            return Err(UpdateKeyError::Rejected(Rejection::GrantProjectQuota));
        }
        let operations: Vec<&str> = grant.operations.iter().map(|op| op.as_str()).collect();
        sqlx::query(text::INSERT_GRANT)
            .bind(grant.grant_id.clone())
            .bind(grant.key_id.to_string())
            .bind(grant.project_id.clone())
            .bind(grant.grantee.clone())
            .bind(grant.grantee_type.as_str().to_owned())
            .bind(operations.join(","))
            .bind(grant.issuing_principal.clone())
            .bind(grant.retiring_principal.clone())
            .bind(grant.name.clone())
            .bind(grant.creation_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("inserting a grant"))?;
        D::notify(&mut tx, CHANGE_CHANNEL, &grant.key_id.to_string())
            .await
            .map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a grant"))?;
        Ok(())
    }

    async fn grants_of(&self, key_id: KeyId) -> Result<Vec<GrantRecord>, StoreError> {
        self.round_trips.tick();
        let rows: Vec<GrantRow> = sqlx::query_as(&format!(
            "SELECT {} FROM key_grants WHERE key_id = $1 ORDER BY creation_ms, grant_id",
            text::GRANT_COLUMNS
        ))
        .bind(key_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading grants"))?;
        rows.into_iter().map(GrantRecord::try_from).collect()
    }

    async fn find_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<GrantRow> =
            sqlx::query_as(&format!("SELECT {} FROM key_grants WHERE grant_id = $1", text::GRANT_COLUMNS))
                .bind(grant_id.to_owned())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading a grant"))?;
        row.map(GrantRecord::try_from).transpose()
    }

    async fn delete_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let deleted = sqlx::query(text::DELETE_GRANT)
            .bind(grant.grant_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("deleting a grant"))?;
        D::notify(&mut tx, CHANGE_CHANNEL, &grant.key_id.to_string())
            .await
            .map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a grant deletion"))?;
        Ok(D::rows_affected(&deleted) > 0)
    }

    async fn retirable_grants(
        &self,
        retiring: &[&str],
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<GrantRecord>, u64), StoreError> {
        self.round_trips.tick();
        // A user id and a domain id: at most two principals.
        let (first, second) = (retiring.first().copied().unwrap_or(""), retiring.get(1).copied().unwrap_or(""));
        let rows: Vec<GrantRow> = sqlx::query_as(&format!(
            "SELECT {} FROM key_grants WHERE retiring_principal IN ($1, $2) ORDER BY creation_ms, grant_id \
             LIMIT $3 OFFSET $4",
            text::GRANT_COLUMNS
        ))
        .bind(first.to_owned())
        .bind(second.to_owned())
        .bind(i64::from(limit))
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing retirable grants"))?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM key_grants WHERE retiring_principal IN ($1, $2)")
            .bind(first.to_owned())
            .bind(second.to_owned())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting retirable grants"))?;
        Ok((rows.into_iter().map(GrantRecord::try_from).collect::<Result<_, _>>()?, total as u64))
    }

    async fn expired_imports(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError> {
        self.round_trips.tick();
        let rows: Vec<(String, String)> = sqlx::query_as(text::EXPIRED_IMPORTS)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("finding expired imported material"))?;
        key_refs(rows)
    }

    async fn count_user_keys(&self, project_id: &str) -> Result<u64, StoreError> {
        self.round_trips.tick();
        let (n,): (i64,) = sqlx::query_as(text::COUNT_USER_KEYS)
            .bind(project_id.to_owned())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting keys"))?;
        Ok(n as u64)
    }

    async fn purge_due(&self, now_ms: i64) -> Result<Vec<KeyId>, StoreError> {
        self.round_trips.tick();
        let due: Vec<(String,)> = sqlx::query_as(text::DUE_KEYS)
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("finding keys due for deletion"))?;
        let mut deleted = Vec::new();
        for (id,) in due {
            if self.purge_one(&id, now_ms).await?
                && let Ok(uuid) = uuid::Uuid::parse_str(&id)
            {
                deleted.push(KeyId(uuid));
            }
        }
        Ok(deleted)
    }

    async fn watch(&self, sink: ChangeSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
        let feed: common::db::FeedSink = std::sync::Arc::new(move |event| match event {
            FeedEvent::Changed(payload) => {
                if let Ok(uuid) = uuid::Uuid::parse_str(&payload) {
                    sink(ChangeEvent::Key(KeyId(uuid)));
                }
            }
            FeedEvent::Reset { healthy } => sink(ChangeEvent::Reset { healthy }),
        });
        D::watch(&self.pool, CHANGE_CHANNEL, feed, shutdown).await
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }
}
