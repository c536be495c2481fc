//! [`SecretStore`] on SQLite, in a file of its own.

use async_trait::async_trait;
use sqlx::SqlitePool;

use super::{CreateSecretError, SecretRow, SecretStore, StoreError, VersionRow, bind_secret, bind_version, sql};
use crate::domain::{SecretRecord, VersionRecord};

/// SQLite-backed secret store.
#[derive(Debug, Clone)]
pub struct SqliteSecretStore {
    pool: SqlitePool,
}

impl SqliteSecretStore {
    /// Wraps a pool on the csms database file.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn with_stages(&self, row: Option<VersionRow>) -> Result<Option<VersionRecord>, StoreError> {
        let Some(row) = row else { return Ok(None) };
        let stages: Vec<String> = sqlx::query_scalar(sql::STAGES_OF_VERSION)
            .bind(&row.secret_id)
            .bind(row.version)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading version stages"))?;
        row.into_record(stages).map(Some)
    }
}

#[async_trait]
impl SecretStore for SqliteSecretStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/csms/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn create_secret(
        &self,
        secret: &SecretRecord,
        first: &VersionRecord,
        quota: u64,
    ) -> Result<(), CreateSecretError> {
        // BEGIN IMMEDIATE takes SQLite's single write lock up front, which
        // makes the quota count and the insert atomic; a deferred transaction
        // would fail instead of waiting when it upgrades to a writer.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a transaction"))?;
        let count: i64 = sqlx::query_scalar(sql::COUNT_SECRETS)
            .bind(&secret.project_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("counting secrets"))?;
        if count as u64 >= quota {
            return Err(CreateSecretError::QuotaExceeded);
        }
        if let Err(e) = bind_secret!(sqlx::query(sql::INSERT_SECRET), secret).execute(&mut *tx).await {
            return Err(if common::db::is_unique_violation(&e) {
                CreateSecretError::NameTaken
            } else {
                StoreError::db("inserting a secret")(e).into()
            });
        }
        bind_version!(sqlx::query(sql::INSERT_VERSION), first)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("inserting a secret version"))?;
        for stage in &first.stages {
            sqlx::query(sql::INSERT_STAGE)
                .bind(&first.secret_id)
                .bind(stage)
                .bind(first.number)
                .bind(first.create_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("inserting a version stage"))?;
        }
        tx.commit().await.map_err(StoreError::db("committing a new secret"))?;
        Ok(())
    }

    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row: Option<SecretRow> = sqlx::query_as(&sql::select_secret())
            .bind(project_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError> {
        let row: Option<VersionRow> = sqlx::query_as(&sql::select_version())
            .bind(secret_id)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a secret version"))?;
        self.with_stages(row).await
    }

    async fn get_version_by_stage(&self, secret_id: &str, stage: &str) -> Result<Option<VersionRecord>, StoreError> {
        let row: Option<VersionRow> = sqlx::query_as(&sql::select_version_by_stage())
            .bind(secret_id)
            .bind(stage)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a staged secret version"))?;
        self.with_stages(row).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = common::db::DatabaseUrl::sqlite_file(&dir.path().join("csms.db"));
        let pool = common::db::connect_sqlite(&url).await.unwrap();
        super::super::conformance::run(SqliteSecretStore::new(pool)).await;
    }
}
