//! [`IdentityStore`](crate::IdentityStore) on Postgres, in the `iam` schema:
//! the shared implementation in [`crate::sql`] with Postgres' migrations.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    SignatureUse,
    sql::{self, UsedRow},
};

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

    /// One statement for the whole batch, one commit (on a generic plan:
    /// `common::db::begin_generic_plans`).
    async fn use_signatures(pool: &PgPool, uses: &[SignatureUse]) -> Result<Vec<UsedRow>, sqlx::Error> {
        let digests: Vec<Vec<u8>> = uses.iter().map(|u| u.digest.to_vec()).collect();
        let expires: Vec<i64> = uses.iter().map(|u| u.expires_ms).collect();
        let mut tx = common::db::begin_generic_plans(pool).await?;
        let firsts = sqlx::query_as(USE_SIGNATURES).bind(digests).bind(expires).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(firsts)
    }
}

/// The rows go in digest order (the caller sorted them), so overlapping
/// batches of two replicas take their row locks in one order. A row this
/// statement inserted has no `xmax`; one it found (and touched, so that
/// RETURNING has it) has this transaction's. Times are the server's
/// clock, read once per statement: replicas' clocks differ, and the
/// replay grace must not depend on which replica saw which use.
const USE_SIGNATURES: &str = "WITH clock AS MATERIALIZED \
     (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8 AS ms) \
     INSERT INTO iam_used_signatures (digest, first_ms, expires_ms) \
     SELECT d, clock.ms, e FROM UNNEST($1::bytea[], $2::int8[]) AS u(d, e), clock ORDER BY d \
     ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest \
     RETURNING digest, first_ms, (xmax = 0) AS inserted, (SELECT ms FROM clock) AS now_ms";
