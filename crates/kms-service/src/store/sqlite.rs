//! [`KeyStore`] on SQLite, in a file of its own.
//!
//! SQLite serves one process (development, CI, single-node use), so there is
//! no change feed: the process that writes invalidates its own cache.

use async_trait::async_trait;
use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;

use super::{
    ChangeSink, CreateKeyError, KeyFilter, KeyMutation, KeyRow, KeyStore, NewKey, RoundTrips, StoreError,
    UpdateKeyError, add_count, bind_key, sql,
};
use crate::domain::{KeyId, KeyRecord};

/// SQLite-backed key store.
#[derive(Debug)]
pub struct SqliteKeyStore {
    pool: SqlitePool,
    round_trips: RoundTrips,
}

impl SqliteKeyStore {
    /// Wraps a pool on the kms database file.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, round_trips: RoundTrips::default() }
    }
}

/// BEGIN IMMEDIATE takes SQLite's write lock up front: writers are
/// serialised (which makes check-then-write atomic), and a deferred
/// transaction would fail instead of waiting when it upgrades to a writer.
async fn begin_immediate(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a transaction"))
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/kms/sqlite").run(&self.pool).await?;
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
        let mut tx = begin_immediate(&self.pool).await?;
        if let Some(quota) = quota {
            let count: i64 = sqlx::query_scalar(sql::COUNT_USER_KEYS)
                .bind(&r.project_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db("counting keys"))?;
            if count as u64 >= quota {
                return Err(CreateKeyError::QuotaExceeded);
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
        let mut tx = begin_immediate(&self.pool).await?;
        let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_id"))
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
            let mut tx = begin_immediate(&self.pool).await?;
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
                let spec = crate::domain::KeySpec::parse(&spec).ok_or_else(|| StoreError::Corrupt(id.clone()))?;
                add_count!(tx, &project_id, spec, crate::domain::KeyState::PendingDeletion, default_key, -1)?;
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

    async fn watch(&self, _sink: ChangeSink, _shutdown: CancellationToken) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = common::db::DatabaseUrl::sqlite_file(&dir.path().join("kms.db"));
        let pool = common::db::connect_sqlite(&url).await.unwrap();
        super::super::conformance::run(SqliteKeyStore::new(pool)).await;
    }
}
