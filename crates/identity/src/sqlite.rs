//! [`IdentityStore`](crate::IdentityStore) on SQLite, in a file of its own:
//! the shared implementation in [`crate::sql`] with SQLite's migrations.

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::sql;

/// SQLite-backed identity store.
pub type SqliteIdentityStore = sql::SqlIdentityStore<Sqlite>;

#[async_trait]
impl sql::Dialect for Sqlite {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/iam/sqlite");

    /// A deferred transaction is already a snapshot in SQLite.
    async fn begin_snapshot(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin().await
    }
}
