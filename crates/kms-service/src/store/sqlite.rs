//! [`KeyStore`] on SQLite, in a file of its own.

use async_trait::async_trait;
use sqlx::SqlitePool;

use super::{CreateKeyError, KeyFilter, KeyRow, KeyStore, NewKey, StoreError, bind_key, sql};
use crate::domain::{KeyId, KeyRecord};

/// SQLite-backed key store.
#[derive(Debug, Clone)]
pub struct SqliteKeyStore {
    pool: SqlitePool,
}

impl SqliteKeyStore {
    /// Wraps a pool on the kms database file.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/kms/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
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

    async fn create_key(
        &self,
        key: NewKey,
        quota: Option<u64>,
    ) -> Result<KeyRecord, CreateKeyError> {
        let r = &key.record;
        // BEGIN IMMEDIATE takes the write lock up front: SQLite serialises
        // writers, so the quota count and the insert cannot interleave, and a
        // deferred transaction would fail instead of waiting when it upgrades.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::db("starting a transaction"))?;
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
        if let Err(e) = bind_key!(sqlx::query(sql::INSERT_KEY), r)
            .execute(&mut *tx)
            .await
        {
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
        tx.commit()
            .await
            .map_err(StoreError::db("committing a new key"))?;
        Ok(key.record)
    }

    async fn get_key(
        &self,
        project_id: &str,
        key_id: KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_id"))
            .bind(project_id)
            .bind(key_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn find_by_alias(
        &self,
        project_id: &str,
        alias: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
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
        let keys = rows
            .into_iter()
            .map(KeyRecord::try_from)
            .collect::<Result<_, _>>()?;
        Ok((keys, total as u64))
    }

    async fn material(&self, key_id: KeyId, version: i32) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::SELECT_MATERIAL)
            .bind(key_id.to_string())
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading key material"))
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
