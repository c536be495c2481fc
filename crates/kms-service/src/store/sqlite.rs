//! [`KeyStore`](super::KeyStore) on SQLite, in a file of its own: the
//! dialect of the shared implementation in [`super::sql`].
//!
//! SQLite serves one process (development, CI, single-node use), so there is
//! no change feed: the process that writes invalidates its own cache. Its
//! `BEGIN IMMEDIATE` takes the single write lock up front, which serialises
//! writers (so check-then-write is atomic without row locks) and makes a
//! writer wait instead of failing when it would upgrade a read lock.

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio_util::sync::CancellationToken;

use super::{ChangeSink, StoreError, sql};

/// SQLite-backed key store.
pub type SqliteKeyStore = sql::SqlKeyStore<Sqlite>;

#[async_trait]
impl sql::Dialect for Sqlite {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/sqlite");

    /// Nothing to tell: no other process shares the file.
    async fn notify(_tx: &mut Transaction<'static, Sqlite>, _key_id: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn watch(_pool: &SqlitePool, _sink: ChangeSink, _shutdown: CancellationToken) -> Result<bool, StoreError> {
        Ok(false)
    }
}
