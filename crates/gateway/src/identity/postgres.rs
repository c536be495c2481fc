//! [`IdentityStore`] on Postgres, in the `iam` schema. The implementation is
//! shared ([`super::impl_identity_store`]); this file opens transactions.

use sqlx::{PgPool, Postgres, Transaction};

use super::*;

/// Postgres-backed identity store.
#[derive(Debug, Clone)]
pub struct PgIdentityStore {
    pool: PgPool,
}

impl PgIdentityStore {
    /// Wraps a pool whose `search_path` is the iam schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, IdentityError> {
        self.pool.begin().await.map_err(IdentityError::db("starting a transaction"))
    }

    /// A snapshot read: one repeatable-read transaction sees every table
    /// at the same moment as the version it reports.
    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>, IdentityError> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(IdentityError::db("starting a read"))
    }
}

impl_identity_store!(PgIdentityStore, Postgres, "../../migrations/iam/postgres");
