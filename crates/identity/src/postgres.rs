//! [`IdentityStore`](crate::IdentityStore) on Postgres, in the `iam` schema:
//! the shared implementation in [`crate::sql`] with Postgres' migrations.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};

use crate::sql;

/// Postgres-backed identity store.
pub type PgIdentityStore = sql::SqlIdentityStore<Postgres>;

#[async_trait]
impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/iam/postgres");

    /// One repeatable-read transaction sees every table at the same moment
    /// as the version it reports.
    async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await
    }
}
