//! [`IdentityStore`] on SQLite, in a file of its own. The implementation is
//! shared ([`super::impl_identity_store`]); `BEGIN IMMEDIATE` takes SQLite's
//! write lock up front, and a deferred transaction is already a snapshot.

use sqlx::{Sqlite, SqlitePool, Transaction};

use super::*;

/// SQLite-backed identity store.
#[derive(Debug, Clone)]
pub struct SqliteIdentityStore {
    pool: SqlitePool,
}

impl SqliteIdentityStore {
    /// Wraps a pool on the identity database file.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, IdentityError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(IdentityError::db("starting a transaction"))
    }

    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>, IdentityError> {
        self.pool.begin().await.map_err(IdentityError::db("starting a read"))
    }
}

impl_identity_store!(SqliteIdentityStore, Sqlite, "../../migrations/iam/sqlite");
