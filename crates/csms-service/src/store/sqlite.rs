//! [`SecretStore`] on SQLite, in a file of its own. The shared
//! implementation is [`super::impl_secret_store`]; this file holds what
//! differs: `BEGIN IMMEDIATE` takes SQLite's single write lock up front, so
//! writers are serialised without row locks (and a deferred transaction
//! would fail instead of waiting when it upgrades to a writer).

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::*;

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

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a transaction"))
    }

    /// Nothing to do: the write lock taken by `begin` covers the project.
    async fn lock_project(_tx: &mut Transaction<'static, Sqlite>, _project_id: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

impl_secret_store!(SqliteSecretStore, Sqlite, "../../migrations/csms/sqlite", "", "group_concat");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = common::db::DatabaseUrl::sqlite_file(&dir.path().join("csms.db"));
        let pool = common::db::connect_sqlite(&url, "csms").await.unwrap();
        super::super::conformance::run(SqliteSecretStore::new(pool)).await;
    }
}
