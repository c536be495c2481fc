//! [`KeyStore`] on SQLite, in a file of its own. The shared implementation
//! is [`super::impl_key_store`]; this file holds what differs.
//!
//! SQLite serves one process (development, CI, single-node use), so there is
//! no change feed: the process that writes invalidates its own cache. Its
//! `BEGIN IMMEDIATE` takes the single write lock up front, which serialises
//! writers (so check-then-write is atomic without row locks) and makes a
//! writer wait instead of failing when it would upgrade a read lock.

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio_util::sync::CancellationToken;

use super::*;

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

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a transaction"))
    }

    /// Nothing to do: `begin` already holds the database's write lock.
    async fn lock_project(_tx: &mut Transaction<'static, Sqlite>, _project_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Nothing to tell: no other process shares the file.
    async fn notify(_tx: &mut Transaction<'static, Sqlite>, _key_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn watch_changes(&self, _sink: ChangeSink, _shutdown: CancellationToken) -> Result<bool, StoreError> {
        Ok(false)
    }
}

impl_key_store!(SqliteKeyStore, Sqlite, "../../migrations/kms/sqlite", "");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = common::db::DatabaseUrl::sqlite_file(&dir.path().join("kms.db"));
        let pool = common::db::connect_sqlite(&url, "kms").await.unwrap();
        super::super::conformance::run(SqliteKeyStore::new(pool)).await;
    }
}
