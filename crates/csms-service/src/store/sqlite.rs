//! [`SecretStore`](super::SecretStore) on SQLite, in a file of its own: the
//! dialect of the shared implementation in [`super::sql`]. `BEGIN
//! IMMEDIATE` takes SQLite's single write lock up front, so writers are
//! serialised without row locks (and a deferred transaction would fail
//! instead of waiting when it upgrades to a writer).

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::sql;

/// SQLite-backed secret store.
pub type SqliteSecretStore = sql::SqlSecretStore<Lite>;

/// The SQLite dialect.
#[derive(Debug)]
pub struct Lite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/sqlite");

#[async_trait]
impl sql::Dialect for Lite {
    type Db = Sqlite;

    const ROW_LOCK: &'static str = "";
    const STRING_AGG: &'static str = "group_concat";

    async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(pool).await
    }

    async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Nothing to do: the write lock taken by `begin` covers the project.
    async fn lock_project(_tx: &mut Transaction<'static, Sqlite>, _project_id: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

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
