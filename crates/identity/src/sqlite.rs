//! [`IdentityStore`](crate::IdentityStore) on SQLite, in a file of its own:
//! the shared implementation in [`crate::sql`] with SQLite's migrations.

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::{
    SignatureUse,
    sql::{self, UsedRow},
};

/// SQLite-backed identity store.
pub type SqliteIdentityStore = sql::SqlIdentityStore<Sqlite>;

#[async_trait]
impl sql::Dialect for Sqlite {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/iam/sqlite");

    /// A deferred transaction is already a snapshot in SQLite.
    async fn begin_snapshot(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin().await
    }

    /// In-process statements are cheap; the commit (the fsync) is one.
    async fn use_signatures(pool: &SqlitePool, uses: &[SignatureUse]) -> Result<Vec<UsedRow>, sqlx::Error> {
        // A write transaction: nothing comes between the insert and the read.
        let mut tx = <Sqlite as common::db::SqlDialect>::begin_write(pool).await?;
        let mut stored = Vec::with_capacity(uses.len());
        for u in uses {
            let inserted: Option<i64> = sqlx::query_scalar(sql::USE_SIGNATURE)
                .bind(u.digest.as_slice())
                .bind(u.now_ms)
                .bind(u.expires_ms)
                .fetch_optional(&mut *tx)
                .await?;
            // The store lives in the gateway's process: its clock is ours.
            let row = match inserted {
                Some(first_ms) => UsedRow { digest: u.digest.to_vec(), first_ms, inserted: true, now_ms: u.now_ms },
                None => {
                    let first_ms =
                        sqlx::query_scalar(sql::FIRST_USE).bind(u.digest.as_slice()).fetch_one(&mut *tx).await?;
                    UsedRow { digest: u.digest.to_vec(), first_ms, inserted: false, now_ms: u.now_ms }
                }
            };
            stored.push(row);
        }
        tx.commit().await?;
        Ok(stored)
    }
}
